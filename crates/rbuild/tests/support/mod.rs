//! Shared setup of the integration tests: a fresh store per test, a busybox base image
//! built by rbuild itself from Debian's `busybox-static`, and readers of the OCI layouts
//! builds write. The capability checks (a loud skip,
//! or a failure under `RBUILD_REQUIRE_ALL=1`) and the registry of the test's own come from
//! `rbuild_test_support`.

#![allow(dead_code, unused_imports)]

pub mod fleet;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use rbuild_test_support::skip::BUSYBOX;
pub use rbuild_test_support::{
    is_root, require, require_busybox, require_root, require_tool, tool, Registry,
};

/// The sandbox needs root (rootless mode is not there yet) and busybox-static for a base.
pub fn can_build_runs() -> bool {
    require_root("the sandbox needs it") && require_busybox()
}

/// One test's world: its own store, config and scratch directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
    pub config: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("rbuild-it-")
            .tempdir()
            .expect("tempdir");
        let store = dir.path().join("store");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "").expect("write config");
        Env { dir, store, config }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A context directory with the given files (`path`, `contents`).
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = self.path(name);
        std::fs::create_dir_all(&root).expect("mkdir context");
        for (path, contents) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, contents).expect("write context file");
        }
        root
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rbuild"));
        c.env("RBUILD_ROOT", &self.store)
            .env("RBUILD_CONFIG", &self.config)
            .stdin(Stdio::null());
        c
    }

    /// Runs rbuild with `args`; returns the output whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run rbuild")
    }

    /// Runs rbuild and insists on success.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "rbuild {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A world whose store has `busybox:latest`, or `None` (said loudly) when RUN cannot work here.
    pub fn with_busybox() -> Option<Env> {
        if !can_build_runs() {
            return None;
        }
        let env = Env::new();
        env.busybox();
        Some(env)
    }

    /// Builds `ctx` (with extra `args`) and exports its root filesystem; returns where.
    pub fn build_local(&self, args: &[&str], ctx: &Path) -> PathBuf {
        let out = self.path("out");
        self.build_quietly(&format!("type=local,dest={}", s(&out)), args, ctx);
        out
    }

    /// Builds `ctx` (with extra `args`) into the OCI layout directory `name`; returns it.
    pub fn build_oci(&self, name: &str, args: &[&str], ctx: &Path) -> PathBuf {
        let layout = self.path(name);
        self.build_quietly(
            &format!("type=oci,dest={},tar=false", s(&layout)),
            args,
            ctx,
        );
        layout
    }

    /// Unpacks image `tag` of the OCI layout directory `layout` with umoci into the runtime
    /// bundle `bundle`, which must succeed; returns the bundle.
    pub fn umoci_unpack(&self, layout: &Path, tag: &str) -> PathBuf {
        let bundle = self.path("bundle");
        let unpack = Command::new("umoci")
            .args([
                "unpack",
                "--image",
                &format!("{}:{tag}", s(layout)),
                s(&bundle),
            ])
            .output()
            .expect("run umoci");
        assert!(unpack.status.success(), "umoci: {}", stderr(&unpack));
        bundle
    }

    /// `rbuild build -q -o <output> <args> <ctx>`, which must succeed.
    fn build_quietly(&self, output: &str, args: &[&str], ctx: &Path) -> Output {
        let mut all = vec!["build", "-q", "-o", output];
        all.extend_from_slice(args);
        all.push(s(ctx));
        self.ok(&all)
    }

    /// Builds `busybox:latest` into this store with rbuild itself: FROM scratch, COPY the static
    /// binary, install its applet links with a RUN.
    pub fn busybox(&self) {
        let ctx = self.path("busybox-ctx");
        std::fs::create_dir_all(&ctx).expect("mkdir");
        std::fs::copy(BUSYBOX, ctx.join("busybox")).expect("copy busybox");
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
             RUN mkdir -p /etc /tmp && chmod 1777 /tmp && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'root:x:0:' > /etc/group\n\
             ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\nCMD [\"sh\"]\n",
        )
        .expect("write Dockerfile");
        self.ok(&[
            "build",
            "-q",
            "-t",
            "busybox:latest",
            ctx.to_str().expect("utf-8"),
        ]);
    }
}

/// A registry of the test's own and a store holding `busybox:latest`, or `None` (said
/// loudly) when RUN or skopeo cannot work here.
pub fn registry_and_busybox() -> Option<(Registry, Env)> {
    if !can_build_runs() || require_tool("skopeo").is_none() {
        return None;
    }
    let registry = Registry::start()?;
    let env = Env::new();
    env.busybox();
    Some((registry, env))
}

/// Whether the plain progress shows the step whose line contains `needle` as cached.
pub fn step_cached(progress: &str, needle: &str) -> bool {
    let lines: Vec<&str> = progress.lines().collect();
    lines.iter().enumerate().any(|(i, l)| {
        l.contains(needle) && {
            let num = l.split(' ').next().unwrap_or("");
            lines[i + 1..].iter().any(|n| *n == format!("{num} CACHED"))
        }
    })
}

/// Runs `cmd` with `input` on its standard input; returns the output whatever the status.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rbuild");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("feed standard input");
    child.wait_with_output().expect("wait for rbuild")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A path as a command-line argument (the tests' paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A JSON file, parsed.
pub fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).expect("read JSON file")).expect("valid JSON")
}

/// Where blob `digest` (`sha256:…`) of the OCI layout directory `layout` is.
pub fn layout_blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The manifest of the single image in an OCI layout directory.
pub fn oci_manifest(layout: &Path) -> serde_json::Value {
    let index = json_file(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    json_file(&layout_blob(layout, digest))
}

/// The layer blobs of the single image in an OCI layout directory, bottom first.
pub fn oci_layers(layout: &Path) -> Vec<PathBuf> {
    oci_manifest(layout)["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| layout_blob(layout, l["digest"].as_str().expect("layer digest")))
        .collect()
}

/// The config JSON of the single image in an OCI layout directory.
pub fn oci_config(layout: &Path) -> serde_json::Value {
    let manifest = oci_manifest(layout);
    let digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    json_file(&layout_blob(layout, digest))
}

/// `skopeo inspect --raw` of `reference` on the plain-HTTP test registry (with `extra` flags,
/// e.g. `--config`), as JSON; skopeo must succeed.
pub fn raw_json(reference: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// podman with its own storage and configuration under `dir` (no global state touched), runc
/// as the runtime. The containers' limits are this process's hard limits (nproc at most
/// 32768): podman's defaults are higher, and raising a limit needs CAP_SYS_RESOURCE, which
/// root lacks on some machines (a VM, a container).
pub fn podman(dir: &Path) -> Command {
    let hard = |resource| match nix::sys::resource::getrlimit(resource) {
        Ok((_, hard)) if hard != nix::sys::resource::RLIM_INFINITY => hard,
        _ => 1 << 20,
    };
    let nofile = hard(nix::sys::resource::Resource::RLIMIT_NOFILE);
    let nproc = hard(nix::sys::resource::Resource::RLIMIT_NPROC).min(32768);
    let conf = dir.join("containers.conf");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n"
        ),
    )
    .unwrap();
    let mut c = Command::new("podman");
    c.env("CONTAINERS_CONF", conf)
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]);
    c
}
