//! Shared setup of the integration tests: a fresh store per test and a busybox base image
//! built by rbuild itself from Debian's `busybox-static`. The capability checks (a loud skip,
//! or a failure under `RBUILD_REQUIRE_ALL=1`) and the registry of the test's own come from
//! `rbuild_test_support`.

#![allow(dead_code, unused_imports)]

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
