//! Shared setup of the integration tests: a fresh store per test, a busybox base image built by
//! rbuild itself from Debian's `busybox-static`, a docker-registry on loopback, and checks for
//! what a test needs (root, tools) that skip loudly — or fail when `RBUILD_REQUIRE_ALL=1` (CI).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "/bin/busybox";

/// Returns false (after saying so loudly) when a requirement is missing; panics instead in CI.
pub fn require(what: &str, ok: bool) -> bool {
    if ok {
        return true;
    }
    if std::env::var_os("RBUILD_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("RBUILD_REQUIRE_ALL=1 but this test needs {what}");
    }
    eprintln!("SKIPPED: this test needs {what}");
    false
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn have_tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The sandbox needs root (rootless mode is not there yet) and busybox-static for a base.
pub fn can_build_runs() -> bool {
    require("root (the sandbox needs it)", is_root())
        && require("busybox-static (/bin/busybox)", Path::new(BUSYBOX).exists())
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
        let dest = format!("type=local,dest={}", out.display());
        let mut all = vec!["build", "-q", "-o", &dest];
        all.extend_from_slice(args);
        let ctx = ctx.to_str().expect("utf-8 path");
        all.push(ctx);
        self.ok(&all);
        out
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

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Debian `docker-registry` on a free loopback port, stopped on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Option<Registry> {
        if !require(
            "docker-registry (Debian package)",
            have_tool("docker-registry"),
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let reg = Registry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&reg.addr).is_ok() {
                return Some(reg);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start on {}", reg.addr);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
