//! Shared helpers of the sandbox integration tests: the capability check (root, overlayfs,
//! busybox-static; a loud skip, or a failure under `RBUILD_REQUIRE_ALL=1`), a busybox rootfs
//! layer, running one command and checking how it ended, and waiting for the host to change.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rbuild_graph::{ExecOp, NetworkMode};
use rbuild_ports::{ExecError, ExecRequest, Executor};
use rbuild_sandbox::{detect_privileges, NamespaceExecutor, RuncExecutor};
pub use rbuild_test_support::fakes::{sh, Collect};

/// Whether the sandbox can run here (see `rbuild_test_support::can_run_sandbox`).
pub fn can_run() -> bool {
    rbuild_test_support::can_run_sandbox()
}

/// A busybox fixture, when the sandbox can run here (see [`can_run`]).
pub fn fixture() -> Option<Fixture> {
    can_run().then(Fixture::new)
}

/// The OCI-runtime executor with Debian's runc, when the sandbox can run here and runc is
/// installed (a skip otherwise, or a failure under `RBUILD_REQUIRE_ALL=1`).
pub fn runc_executor() -> Option<RuncExecutor> {
    if !can_run() {
        return None;
    }
    let runc = rbuild_test_support::require_tool("runc")?;
    Some(RuncExecutor::new(runc, init_exe(), detect_privileges()))
}

/// The test build of the sandbox init program.
pub fn init_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rbuild-sandbox-init"))
}

/// A test fixture: a busybox base layer plus an upper and work dir.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub layers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// Builds a rootfs layer from /bin/busybox: every applet symlinked in /bin, /etc/passwd with
/// root and alice (1000), /etc/group, and /etc/x.
pub fn busybox_layer(at: &Path) {
    std::fs::create_dir_all(at.join("bin")).expect("mkdir bin");
    std::fs::create_dir_all(at.join("etc")).expect("mkdir etc");
    std::fs::create_dir_all(at.join("tmp")).expect("mkdir tmp");
    std::fs::copy("/bin/busybox", at.join("bin/busybox")).expect("copy busybox");
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", at.join("bin").join(applet)).expect("applet symlink");
    }
    std::fs::write(
        at.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(
        at.join("etc/group"),
        "root:x:0:\nalice:x:1000:\nwheel:x:10:alice\n",
    )
    .expect("group");
    std::fs::write(at.join("etc/x"), "x\n").expect("etc/x");
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::new_in(&std::env::temp_dir())
    }

    /// A fixture whose files live under `parent`.
    pub fn new_in(parent: &Path) -> Fixture {
        let dir = tempfile::tempdir_in(parent).expect("tempdir");
        let base = dir.path().join("layer0");
        busybox_layer(&base);
        let upper = dir.path().join("upper");
        let work = dir.path().join("work");
        std::fs::create_dir(&upper).expect("mkdir upper");
        std::fs::create_dir(&work).expect("mkdir work");
        Fixture {
            dir,
            layers: vec![base],
            upper,
            work,
        }
    }

    /// Runs `script` with `/bin/sh -c` as `user` on the built-in executor.
    pub fn run_as(&self, script: &str, user: &str, network: NetworkMode) -> Run {
        self.run_with(
            &NamespaceExecutor::new(init_exe(), detect_privileges()),
            script,
            user,
            network,
        )
    }

    pub fn run(&self, script: &str) -> Run {
        self.run_as(script, "", NetworkMode::None)
    }

    pub fn run_op(&self, op: &ExecOp) -> Run {
        let exec = NamespaceExecutor::new(init_exe(), detect_privileges());
        self.run_op_with(&exec, op)
    }

    /// Runs `script` with `/bin/sh -c` as `user` on the given executor.
    pub fn run_with(
        &self,
        exec: &dyn Executor,
        script: &str,
        user: &str,
        network: NetworkMode,
    ) -> Run {
        let op = ExecOp {
            platform: rbuild_types::Platform::host(),
            user: user.into(),
            network,
            ..sh(script)
        };
        self.run_op_with(exec, &op)
    }

    pub fn run_op_with(&self, exec: &dyn Executor, op: &ExecOp) -> Run {
        self.run_mounted(exec, op, &[])
    }

    /// Runs `op` on `exec` with these `RUN --mount`s.
    pub fn run_mounted(
        &self,
        exec: &dyn Executor,
        op: &ExecOp,
        mounts: &[rbuild_ports::ResolvedMount],
    ) -> Run {
        self.run_request(exec, op, mounts, &rbuild_ports::CancelToken::new())
    }

    /// Runs `op` on `exec` with `cancel` as the build's cancellation token.
    pub fn run_cancellable(
        &self,
        exec: &dyn Executor,
        op: &ExecOp,
        cancel: &rbuild_ports::CancelToken,
    ) -> Run {
        self.run_request(exec, op, &[], cancel)
    }

    fn run_request(
        &self,
        exec: &dyn Executor,
        op: &ExecOp,
        mounts: &[rbuild_ports::ResolvedMount],
        cancel: &rbuild_ports::CancelToken,
    ) -> Run {
        let log = Collect::default();
        let res = exec.run(ExecRequest {
            op,
            layers: &self.layers,
            upper: &self.upper,
            work: &self.work,
            mounts,
            log: &log,
            cancel,
        });
        (res, log)
    }

    /// Every entry of the upper dir, relative, sorted.
    pub fn upper_entries(&self) -> Vec<String> {
        tree(&self.upper)
    }
}

/// Every entry under `dir`, relative, sorted (none when it cannot be read).
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let path = entry.path();
        let rel = path.strip_prefix(root).expect("under root");
        out.push(rel.display().to_string());
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(root, &path, out);
        }
    }
}

/// What running one command gives: how it ended, and its output.
pub type Run = (Result<(), ExecError>, Collect);

/// Shows a failed run with its output.
pub fn explain(res: &Result<(), ExecError>, log: &Collect) -> String {
    format!(
        "result: {res:?}\nstdout: {}\nstderr: {}",
        log.stdout(),
        log.stderr()
    )
}

/// The output of a run that must succeed (otherwise the run is shown).
pub fn ok(run: Run) -> Collect {
    let (res, log) = run;
    assert!(res.is_ok(), "{}", explain(&res, &log));
    log
}

/// Asserts that a run failed with an error `expected` accepts (otherwise the run is shown).
pub fn failed(run: Run, expected: impl FnOnce(&ExecError) -> bool) {
    let (res, log) = run;
    assert!(
        res.as_ref().err().is_some_and(expected),
        "{}",
        explain(&res, &log)
    );
}

/// The message of a run that failed to set up (otherwise the run is shown).
pub fn setup_error(run: Run) -> String {
    match run {
        (Err(ExecError::Setup(e)), _) => e.to_string(),
        (other, log) => panic!("{}", explain(&other, &log)),
    }
}

/// Polls `done` until it holds or `secs` seconds have passed; whether it held.
pub fn wait_for(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A TCP listener on `addr` that answers its first connection with `pong`: the server's
/// port, and its thread.
pub fn pong_server(addr: &str) -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind(addr).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        if let Some(Ok(mut s)) = listener.incoming().next() {
            let mut buf = [0u8; 16];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"pong\n");
        }
    });
    (port, server)
}

/// `sleep <marker>` twice, one in the background: processes to find on the host by their
/// unusual number, to tell whether a cancelled run left anything behind.
pub fn sleepers(marker: &str) -> ExecOp {
    sh(&format!("sleep {marker} & exec sleep {marker}"))
}

/// Whether a process whose command line is `sleep <marker>` runs (anywhere on the host).
pub fn sleeper_running(marker: &str) -> bool {
    let wanted = format!("sleep\0{marker}\0");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|cmd| cmd.ends_with(wanted.as_bytes()))
}

/// Puts the syscall probe (`rbuild_test_support::syscall_probe`) at `/bin/probe` of `layer`,
/// and returns a script of probes with the errnos Docker's default profile gives a root RUN
/// with Docker's capabilities, one per line; `None` (a loud skip) without gcc.
pub fn seccomp_probes(layer: &Path) -> Option<(String, String)> {
    let probe = rbuild_test_support::syscall_probe::build_probe(&layer.join("bin"))?;
    // Without a filter the host answers EFAULT (io_uring is not off here), so EPERM is the
    // filter's.
    let host = rbuild_test_support::syscall_probe::on_host(
        &probe,
        &[&libc::SYS_io_uring_setup.to_string(), "1", "0"],
    );
    assert_eq!(host, libc::EFAULT.to_string(), "io_uring_setup on the host");
    let calls: &[(String, i32)] = &[
        // Refused by the allow list: io_uring, keyrings, the mount API, namespaces.
        (format!("{} 1 0", libc::SYS_io_uring_setup), libc::EPERM),
        (format!("{} 0 -3 0", libc::SYS_keyctl), libc::EPERM),
        (format!("{} 0 0 0 0 0", libc::SYS_mount), libc::EPERM),
        (format!("{} 0x10000000", libc::SYS_unshare), libc::EPERM),
        // Arg-conditional rules: personality queries pass, ADDR_NO_RANDOMIZE does not;
        // AF_VSOCK sockets are refused; clone3 says ENOSYS so libcs fall back to clone.
        (format!("{} 0xffffffff", libc::SYS_personality), 0),
        (format!("{} 0x0040000", libc::SYS_personality), libc::EPERM),
        (format!("{} 40 1 0", libc::SYS_socket), libc::EPERM),
        (format!("{} 0 0", libc::SYS_clone3), libc::ENOSYS),
        // Allowed: getpid, and chroot (CAP_SYS_CHROOT is one of Docker's capabilities; the
        // kernel answers EFAULT for a null path).
        (format!("{}", libc::SYS_getpid), 0),
        (format!("{} 0", libc::SYS_chroot), libc::EFAULT),
    ];
    let script = calls
        .iter()
        .map(|(args, _)| format!("/bin/probe {args}"))
        .collect::<Vec<_>>()
        .join("; ");
    let expected: String = calls
        .iter()
        .map(|(_, errno)| format!("{errno}\n"))
        .collect();
    Some((script, expected))
}

/// Runs `op` (the [`sleepers`] of `marker`) with `exec`, cancels it once its sleepers run,
/// and checks that the run fails, returns promptly and leaves none of them (`outlived` says
/// what would have outlived it).
pub fn assert_cancel_stops_sleepers(
    exec: &dyn Executor,
    op: &ExecOp,
    marker: &str,
    outlived: &str,
) {
    let f = Fixture::new();
    let cancel = rbuild_ports::CancelToken::new();
    let canceller = {
        let cancel = cancel.clone();
        let marker = marker.to_string();
        std::thread::spawn(move || {
            wait_for(20, || sleeper_running(&marker));
            cancel.cancel();
        })
    };
    let start = Instant::now();
    let (res, log) = f.run_cancellable(exec, op, &cancel);
    canceller.join().expect("canceller thread");
    assert!(
        res.is_err(),
        "a cancelled run fails: {}",
        explain(&res, &log)
    );
    assert!(
        start.elapsed().as_secs() < 15,
        "the cancelled run returned only after {:?}",
        start.elapsed()
    );
    assert!(wait_for(5, || !sleeper_running(marker)), "{outlived}");
}
