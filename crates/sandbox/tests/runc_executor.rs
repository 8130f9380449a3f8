//! The OCI-runtime adapter with Debian's runc (needs root and /usr/sbin/runc).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::Instant;

use common::{explain, init_exe, runc_executor, Fixture};
use rbuild_graph::NetworkMode;
use rbuild_ports::ExecError;
use rbuild_sandbox::{detect_privileges, NamespaceExecutor};

#[test]
fn runc_runs_and_streams_output() {
    let Some(exec) = runc_executor() else {
        return;
    };
    let f = Fixture::new();
    let (res, log) = f.run_with(
        &exec,
        "echo hello; echo oops >&2; hostname",
        "",
        NetworkMode::None,
    );
    assert!(res.is_ok(), "{}", explain(&res, &log));
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
    let (res, log) = f.run_with(
        &exec,
        "rm /etc/x && mkdir -p /a/b && echo 1 > /a/f && ln /a/f /a/h",
        "",
        NetworkMode::None,
    );
    assert!(res.is_ok(), "{}", explain(&res, &log));
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
    let (res, log) = f.run_with(&exec, "exit 3", "", NetworkMode::None);
    assert!(
        matches!(res, Err(ExecError::Exit(3))),
        "{}",
        explain(&res, &log)
    );
    let (res, log) = f.run_with(
        &exec,
        "id -u; id -G; grep CapEff /proc/self/status",
        "alice",
        NetworkMode::None,
    );
    assert!(res.is_ok(), "{}", explain(&res, &log));
    assert_eq!(log.stdout(), "1000\n1000 10\nCapEff:\t0000000000000000\n");
    let (res, log) = f.run_with(&exec, "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; echo 1 > /proc/sys/kernel/domainname && exit 9; exit 0", "", NetworkMode::None);
    assert!(res.is_ok(), "{}", explain(&res, &log));
    assert_eq!(log.stdout(), "CapEff:\t00000000a80425fb\nNoNewPrivs:\t1\n");
    let (res, log) = f.run_with(&exec, "true", "nobody", NetworkMode::None);
    match res {
        Err(ExecError::Setup(e)) => {
            assert!(e.to_string().contains("unable to find user nobody"), "{e}")
        }
        other => panic!("{}", explain(&other, &log)),
    }
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
    let (res, log) = f.run_with(
        &exec,
        "grep -E '^Seccomp:' /proc/self/status; unshare -U true && exit 20; exit 0",
        "alice",
        NetworkMode::None,
    );
    assert!(res.is_ok(), "{}", explain(&res, &log));
    assert_eq!(log.stdout(), "Seccomp:\t2\n");
}

#[test]
fn runc_cancel_kills_the_container() {
    let Some(exec) = runc_executor() else {
        return;
    };
    let f = Fixture::new();
    // A number no other test sleeps for, so its processes can be found on the host.
    let marker = (700_000 + std::process::id() % 100_000).to_string();
    let op = common::sleepers(&marker);
    let cancel = rbuild_ports::CancelToken::new();
    let canceller = {
        let cancel = cancel.clone();
        let marker = marker.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while !common::sleeper_running(&marker) && start.elapsed().as_secs() < 20 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            cancel.cancel();
        })
    };
    let start = Instant::now();
    let (res, log) = f.run_cancellable(&exec, &op, &cancel);
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
    // Nothing of the container outlives the run.
    let gone = Instant::now();
    while common::sleeper_running(&marker) && gone.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !common::sleeper_running(&marker),
        "the container's processes outlived the cancelled run"
    );
}
