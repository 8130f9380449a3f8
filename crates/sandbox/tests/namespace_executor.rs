//! The built-in namespace executor, run for real (needs root): it must isolate, not only run.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{
    can_run, explain, failed, fixture, init_exe, ok, pong_server, setup_error, sh, wait_for,
    Fixture,
};
use rbuild_graph::{ExecOp, NetworkMode};
use rbuild_ports::ExecError;
use rbuild_test_support::fakes::exec_op;

#[test]
fn echo_reaches_the_log_sink() {
    let Some(f) = fixture() else {
        return;
    };
    let log = ok(f.run("echo hello; echo oops >&2"));
    assert_eq!(log.stdout(), "hello\n");
    assert_eq!(log.stderr(), "oops\n");
}

#[test]
fn only_real_changes_land_in_upper() {
    let Some(f) = fixture() else {
        return;
    };
    ok(f.run("echo data > /out.txt; cat /etc/hosts /etc/resolv.conf >/dev/null; ls /dev /proc/self /sys >/dev/null"));
    assert_eq!(f.upper_entries(), vec!["out.txt".to_string()]);
    assert_eq!(
        std::fs::read_to_string(f.upper.join("out.txt")).expect("read"),
        "data\n"
    );
}

#[test]
fn rm_of_a_lower_file_is_a_whiteout() {
    let Some(f) = fixture() else {
        return;
    };
    ok(f.run("rm /bin/cat"));
    let meta = std::fs::symlink_metadata(f.upper.join("bin/cat")).expect("whiteout");
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), 0);
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    // The lower layer itself is untouched.
    assert!(f.layers[0].join("bin/cat").symlink_metadata().is_ok());
}

#[test]
fn host_files_outside_the_rootfs_are_invisible() {
    if !can_run() {
        return;
    }
    let marker_dir = tempfile::tempdir().expect("tempdir");
    let marker = marker_dir.path().join("host-marker");
    std::fs::write(&marker, "secret").expect("marker");
    let f = Fixture::new();
    let script = format!(
        "test -e {m} && exit 10; test -e {u} && exit 11; ls / > /dev/null; exit 0",
        m = marker.display(),
        u = f.upper.display()
    );
    ok(f.run(&script));
}

#[test]
fn pid_1_is_the_sandbox_init() {
    let Some(f) = fixture() else {
        return;
    };
    let log = ok(f.run("tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$"));
    let out = log.stdout();
    let mut lines = out.lines();
    let cmdline = lines.next().unwrap_or("");
    assert!(
        cmdline.contains(rbuild_sandbox::INIT_ARG),
        "pid 1 is {cmdline:?}"
    );
    // The command is pid 2: the first process pid 1 forked.
    assert_eq!(lines.next(), Some("2"));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let log = ok(f.run("hostname"));
    assert_eq!(log.stdout().trim(), rbuild_sandbox::spec::HOSTNAME);
    assert_ne!(hostname.trim(), rbuild_sandbox::spec::HOSTNAME);
}

#[test]
fn network_none_cannot_reach_the_host_loopback() {
    if !can_run() {
        return;
    }
    // Answers the one connection the host-network control makes.
    let (port, server) = pong_server("127.0.0.1:0");
    let f = Fixture::new();
    let script = format!("echo ping | nc -w 2 127.0.0.1 {port}");
    for network in [NetworkMode::None, NetworkMode::Default] {
        let (res, log) = f.run_as(&script, "", network);
        assert!(
            matches!(res, Err(ExecError::Exit(_))),
            "{network:?}: {}",
            explain(&res, &log)
        );
        assert!(!log.stdout().contains("pong"));
    }
    // Positive control: the host network reaches it.
    let log = ok(f.run_as(&script, "", NetworkMode::Host));
    assert_eq!(log.stdout(), "pong\n");
    server.join().expect("server");
    // Loopback inside the sandbox works.
    ok(f.run("ip link show lo | grep -q UP"));
}

fn process_with_arg_exists(arg: &str) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| c.split(|b| *b == 0).any(|part| part == arg.as_bytes()))
            .unwrap_or(false)
    })
}

#[test]
fn background_processes_do_not_outlive_the_run() {
    let Some(f) = fixture() else {
        return;
    };
    let started = Instant::now();
    let log = ok(f.run("sleep 4711 & sleep 4711 </dev/null >/dev/null 2>&1 & echo started"));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(log.stdout(), "started\n");
    assert!(
        wait_for(5, || !process_with_arg_exists("4711")),
        "sleep 4711 survived the run"
    );
}

#[test]
fn proc_sys_is_read_only_and_kcore_masked() {
    let Some(f) = fixture() else {
        return;
    };
    failed(
        f.run("echo 1 > /proc/sys/kernel/domainname && exit 0; exit 7"),
        |e| matches!(e, ExecError::Exit(7)),
    );
    let log = ok(f.run("test -s /proc/kcore && exit 8; cat /proc/keys | wc -c"));
    assert_eq!(log.stdout().trim(), "0");
}

#[test]
fn capabilities_are_dockers_default_set() {
    let Some(f) = fixture() else {
        return;
    };
    let log = ok(f.run("grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status"));
    let out = log.stdout();
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // No signal is ignored or blocked (the init's Rust runtime ignores SIGPIPE). Asked
    // without a shell in between: busybox sh ignores SIGQUIT in its children.
    let op = exec_op(&["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]);
    let log = ok(f.run_op(&op));
    assert_eq!(
        log.stdout(),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
    // A non-root user keeps no capabilities.
    let log = ok(f.run_as("grep CapEff /proc/self/status", "alice", NetworkMode::None));
    assert!(log.stdout().contains("CapEff:\t0000000000000000"));
}

#[test]
fn exit_codes_and_signals_are_reported() {
    let Some(f) = fixture() else {
        return;
    };
    failed(f.run("exit 3"), |e| matches!(e, ExecError::Exit(3)));
    failed(f.run("kill -9 $$"), |e| matches!(e, ExecError::Signal(9)));
    let op = exec_op(&["no-such-program"]);
    let e = setup_error(f.run_op(&op));
    assert!(e.contains("no-such-program"), "{e}");
}

#[test]
fn user_by_name_and_by_uid() {
    let Some(f) = fixture() else {
        return;
    };
    for user in ["alice", "1000"] {
        let (res, log) = f.run_as("id -u; id -g; id -G; echo $HOME", user, NetworkMode::None);
        assert!(res.is_ok(), "{user}: {}", explain(&res, &log));
        assert_eq!(log.stdout(), "1000\n1000\n1000 10\n/home/alice\n", "{user}");
    }
    let log = ok(f.run_as("id -u; id -g", "4242:4343", NetworkMode::None));
    assert_eq!(log.stdout(), "4242\n4343\n");
    let e = setup_error(f.run_as("true", "nobody", NetworkMode::None));
    assert!(e.contains("unable to find user nobody"), "{e}");
}

#[test]
fn layer_holds_exactly_the_expected_entries() {
    let Some(f) = fixture() else {
        return;
    };
    ok(f.run("rm /etc/x && mkdir -p /a/b && echo 1 > /a/f && ln /a/f /a/h"));
    assert_eq!(
        f.upper_entries(),
        vec!["a", "a/b", "a/f", "a/h", "etc", "etc/x"]
    );
    let fm = std::fs::metadata(f.upper.join("a/f")).expect("a/f");
    let hm = std::fs::metadata(f.upper.join("a/h")).expect("a/h");
    assert_eq!(fm.ino(), hm.ino());
    assert_eq!(fm.nlink(), 2);
    let x = std::fs::symlink_metadata(f.upper.join("etc/x")).expect("etc/x");
    assert!(x.file_type().is_char_device() && x.rdev() == 0);
}

#[test]
fn missing_cwd_is_created_and_path_defaults() {
    let Some(f) = fixture() else {
        return;
    };
    let op = ExecOp {
        platform: rbuild_types::Platform::host(),
        env: vec!["FOO=bar".into()],
        cwd: "/work/dir".into(),
        ..exec_op(&["sh", "-c", "pwd; echo $PATH"])
    };
    let log = ok(f.run_op(&op));
    assert_eq!(
        log.stdout(),
        "/work/dir\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    assert!(f.upper.join("work/dir").is_dir());
}

#[test]
fn empty_layer_list_is_an_empty_root() {
    let Some(mut f) = fixture() else {
        return;
    };
    // Put busybox in no layer: the command cannot exist.
    f.layers.clear();
    let e = setup_error(f.run("true"));
    assert!(e.contains("/bin/sh"), "{e}");
    // Setup left nothing behind in the layer.
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

#[test]
fn many_layers_fit_the_mount_options() {
    let Some(mut f) = fixture() else {
        return;
    };
    for i in 0..120 {
        let dir: PathBuf = f
            .dir
            .path()
            .join(format!("a-rather-long-layer-directory-name-{i:04}"));
        std::fs::create_dir_all(dir.join("files")).expect("mkdir");
        std::fs::write(dir.join("files").join(format!("f{i}")), "x").expect("write");
        f.layers.push(dir);
    }
    let log = ok(f.run("ls /files | wc -l"));
    assert_eq!(log.stdout().trim(), "120");
}

#[test]
fn nothing_outlives_a_killed_rbuild() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let killed = Fixture::new_in(scratch.path());
    // A child process plays rbuild: it starts a long RUN, then gets SIGKILLed.
    let mut helper = std::process::Command::new(env!("CARGO_BIN_EXE_rbuild-sandbox-test-child"))
        .arg(init_exe())
        .arg(&killed.upper)
        .arg(&killed.work)
        .arg(&killed.layers[0])
        .arg(serde_json::to_string(&sh("sleep 4713")).expect("op as JSON"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn helper");
    assert!(
        wait_for(30, || process_with_arg_exists("4713")),
        "the helper's RUN never started"
    );
    helper.kill().expect("kill helper");
    helper.wait().expect("reap helper");
    assert!(
        wait_for(5, || !process_with_arg_exists("4713")),
        "sleep 4713 outlived its killed parent"
    );
    // The next run sweeps the scratch dir the killed helper left behind.
    let leftover = |pid: u32| {
        std::fs::read_dir(std::env::temp_dir())
            .map(|rd| {
                rd.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("rbuild-sandbox-{pid}-"))
                })
            })
            .unwrap_or(false)
    };
    // (Not asserted to exist first: a parallel test's run may already have swept it.)
    let f = Fixture::new();
    ok(f.run("true"));
    assert!(
        !leftover(helper.id()),
        "the stale scratch dir was not swept"
    );
}

#[test]
fn rootfs_without_etc_gets_no_etc_in_the_layer() {
    let Some(f) = fixture() else {
        return;
    };
    std::fs::remove_dir_all(f.layers[0].join("etc")).expect("rm etc");
    ok(f.run("cat /etc/hosts | grep -q localhost"));
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

#[test]
fn symlinked_mount_points_stay_inside_the_rootfs() {
    let Some(f) = fixture() else {
        return;
    };
    let host_dir = tempfile::tempdir().expect("tempdir");
    let escape = host_dir.path().join("escaped-hosts");
    // An image whose /etc/hosts points at a host path (absolute and via ..).
    std::os::unix::fs::symlink(
        format!("../../../../../../..{}", escape.display()),
        f.layers[0].join("etc/hosts"),
    )
    .expect("symlink");
    ok(f.run("grep -q localhost /etc/hosts"));
    assert!(
        !escape.exists(),
        "the setup wrote through the image's symlink to the host"
    );
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

#[test]
fn seccomp_refuses_user_namespaces() {
    let Some(f) = fixture() else {
        return;
    };
    // `unshare -U` needs no capability without seccomp; the filter must refuse it.
    let log = ok(f.run_as(
        "unshare -U true && exit 20; exit 0",
        "alice",
        NetworkMode::None,
    ));
    assert!(log.stderr().contains("unshare"), "{}", log.stderr());
    let log = ok(f.run("grep -E '^Seccomp:' /proc/self/status"));
    assert_eq!(log.stdout(), "Seccomp:\t2\n");
}

#[test]
fn seccomp_is_dockers_allow_list() {
    let Some(f) = fixture() else {
        return;
    };
    let Some((script, expected)) = common::seccomp_probes(&f.layers[0]) else {
        return;
    };
    let log = ok(f.run(&script));
    assert_eq!(log.stdout(), expected, "{}", log.stderr());
}

#[test]
fn default_network_reaches_out_through_slirp4netns() {
    if !can_run() {
        return;
    }
    if rbuild_test_support::require_tool("slirp4netns").is_none() {
        return;
    }
    let ip = rbuild_test_support::http::host_global_ipv4();
    if !rbuild_test_support::require("a global IPv4 address on the host", ip.is_some()) {
        return;
    }
    let ip = ip.unwrap_or_default();
    let (port, server) = pong_server("0.0.0.0:0");
    let f = Fixture::new();
    let script = format!("echo ping | nc -w 5 {ip} {port}");
    // Isolated: no route out.
    failed(f.run_as(&script, "", NetworkMode::None), |e| {
        matches!(e, ExecError::Exit(_))
    });
    // Default: out through slirp4netns, with its DNS forwarder in resolv.conf.
    let log = ok(f.run_as(
        &format!(
            "{script}; grep nameserver /etc/resolv.conf; ip -4 -o addr show tap0 | grep -c inet"
        ),
        "",
        NetworkMode::Default,
    ));
    assert_eq!(log.stdout(), "pong\nnameserver 10.0.2.3\n1\n");
    server.join().expect("server");
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

/// Whether this kernel's overlayfs has the `volatile` option (Linux 5.10 and later).
fn kernel_has_volatile_overlay() -> bool {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (5, 10)
}

#[test]
fn root_overlay_is_volatile_and_its_work_dir_reusable() {
    let Some(f) = fixture() else {
        return;
    };
    let log = ok(f.run("grep '^overlay / ' /proc/self/mounts; echo 1 > /first"));
    if kernel_has_volatile_overlay() {
        assert!(log.stdout().contains("volatile"), "{}", log.stdout());
    }
    // A volatile mount leaves work/incompat/volatile behind, which makes overlayfs refuse
    // the same work dir; the setup removes it, so a second run over the same dirs works.
    let log = ok(f.run("cat /first; echo 2 > /second"));
    assert_eq!(log.stdout(), "1\n");
    assert_eq!(f.upper_entries(), vec!["first", "second"]);
}

#[test]
fn dev_has_docker_s_nodes_with_their_modes_and_owners() {
    let Some(f) = fixture() else {
        return;
    };
    let log = ok(f.run(
        "cd /dev && for n in null zero full random urandom tty; do stat -c '%n %A %u %g %t %T' $n; done; \
         for l in fd stdin stdout stderr ptmx; do readlink $l; done",
    ));
    assert_eq!(
        log.stdout(),
        "null crw-rw-rw- 0 0 1 3\n\
         zero crw-rw-rw- 0 0 1 5\n\
         full crw-rw-rw- 0 0 1 7\n\
         random crw-rw-rw- 0 0 1 8\n\
         urandom crw-rw-rw- 0 0 1 9\n\
         tty crw-rw-rw- 0 0 5 0\n\
         /proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\n"
    );
}
