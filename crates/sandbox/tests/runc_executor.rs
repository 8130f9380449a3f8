//! The OCI-runtime adapter with Debian's runc (needs root and /usr/sbin/runc).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::Instant;

use common::{explain, failed, init_exe, ok, runc_executor, setup_error, Fixture};
use rbuild_graph::NetworkMode;
use rbuild_ports::ExecError;
use rbuild_sandbox::{detect_privileges, NamespaceExecutor};

#[test]
fn runc_runs_and_streams_output() {
    let Some(exec) = runc_executor() else {
        return;
    };
    let f = Fixture::new();
    let log = ok(f.run_with(
        &exec,
        "echo hello; echo oops >&2; hostname",
        "",
        NetworkMode::None,
    ));
    assert_eq!(
        log.stdout(),
        format!("hello\n{}\n", rbuild_sandbox::spec::HOSTNAME)
    );
    assert_eq!(log.stderr(), "oops\n");
}

#[test]
fn runc_layer_holds_exactly_the_expected_entries() {
    let Some(exec) = runc_executor() else {
        return;
    };
    let f = Fixture::new();
    ok(f.run_with(
        &exec,
        "rm /etc/x && mkdir -p /a/b && echo 1 > /a/f && ln /a/f /a/h",
        "",
        NetworkMode::None,
    ));
    assert_eq!(
        f.upper_entries(),
        vec!["a", "a/b", "a/f", "a/h", "etc", "etc/x"]
    );
    let fm = std::fs::metadata(f.upper.join("a/f")).expect("a/f");
    assert_eq!(fm.nlink(), 2);
    let x = std::fs::symlink_metadata(f.upper.join("etc/x")).expect("etc/x");
    assert!(x.file_type().is_char_device() && x.rdev() == 0);
}

#[test]
fn runc_exit_codes_users_and_isolation() {
    let Some(exec) = runc_executor() else {
        return;
    };
    let f = Fixture::new();
    failed(f.run_with(&exec, "exit 3", "", NetworkMode::None), |e| {
        matches!(e, ExecError::Exit(3))
    });
    let log = ok(f.run_with(
        &exec,
        "id -u; id -G; grep CapEff /proc/self/status",
        "alice",
        NetworkMode::None,
    ));
    assert_eq!(log.stdout(), "1000\n1000 10\nCapEff:\t0000000000000000\n");
    let log = ok(f.run_with(&exec, "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; echo 1 > /proc/sys/kernel/domainname && exit 9; exit 0", "", NetworkMode::None));
    assert_eq!(log.stdout(), "CapEff:\t00000000a80425fb\nNoNewPrivs:\t1\n");
    let e = setup_error(f.run_with(&exec, "true", "nobody", NetworkMode::None));
    assert!(e.contains("unable to find user nobody"), "{e}");
    assert_eq!(f.upper_entries(), Vec::<String>::new());
}

/// Not an assertion on speed: prints the per-RUN overhead of both executors for the report.
#[test]
fn overhead_of_run_true() {
    let Some(runc_exec) = runc_executor() else {
        return;
    };
    let builtin = NamespaceExecutor::new(init_exe(), detect_privileges());
    let f = Fixture::new();
    let n = 10;
    for (name, exec) in [
        ("builtin", &builtin as &dyn rbuild_ports::Executor),
        ("runc", &runc_exec),
    ] {
        let start = Instant::now();
        for _ in 0..n {
            let (res, log) = f.run_with(exec, "true", "", NetworkMode::None);
            assert!(res.is_ok(), "{name}: {}", explain(&res, &log));
        }
        eprintln!(
            "TIMING: RUN true with {name}: {:?} per run",
            start.elapsed() / n
        );
    }
}

#[test]
fn runc_applies_the_same_seccomp_filter() {
    let Some(exec) = runc_executor() else {
        return;
    };
    let f = Fixture::new();
    let log = ok(f.run_with(
        &exec,
        "grep -E '^Seccomp:' /proc/self/status; unshare -U true && exit 20; exit 0",
        "alice",
        NetworkMode::None,
    ));
    assert_eq!(log.stdout(), "Seccomp:\t2\n");
}

#[test]
fn runc_applies_dockers_allow_list() {
    let Some(exec) = runc_executor() else {
        return;
    };
    let f = Fixture::new();
    let Some((script, expected)) = common::seccomp_probes(&f.layers[0]) else {
        return;
    };
    let log = ok(f.run_with(&exec, &script, "root", NetworkMode::None));
    assert_eq!(log.stdout(), expected, "{}", log.stderr());
}

#[test]
fn runc_cancel_kills_the_container() {
    let Some(exec) = runc_executor() else {
        return;
    };
    // A number no other test sleeps for, so its processes can be found on the host.
    let marker = (700_000 + std::process::id() % 100_000).to_string();
    let op = common::sleepers(&marker);
    common::assert_cancel_stops_sleepers(
        &exec,
        &op,
        &marker,
        "the container's processes outlived the cancelled run",
    );
}
