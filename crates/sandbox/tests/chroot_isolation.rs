//! `--isolation=chroot` in the sandbox: the same layer as the namespaced run (the chroot's
//! /etc files and device nodes never reach it), /proc where mounts are permitted (here, as
//! root; `rbuild`'s tests/hardened_run.rs runs it where they are not), Docker's seccomp
//! profile still applies, and a cancelled run's processes are killed although there is no
//! pid namespace.

mod common;

use common::{can_run, init_exe, ok, Fixture};
use rbuild_graph::NetworkMode;
use rbuild_sandbox::{detect_privileges, Isolation, NamespaceExecutor};

fn chroot_executor() -> Option<NamespaceExecutor> {
    can_run().then(|| {
        NamespaceExecutor::new(init_exe(), detect_privileges()).with_isolation(Isolation::Chroot)
    })
}

#[test]
fn a_chroot_run_leaves_only_its_changes_in_the_layer() {
    let Some(exec) = chroot_executor() else {
        return;
    };
    let f = Fixture::new();
    let log = ok(f.run_with(
        &exec,
        "echo data > /out.txt; rm /bin/cat; echo x > /dev/null; grep -q localhost /etc/hosts; \
         test -c /dev/zero; test $$ != 1 && echo chrooted; \
         test -d /proc/self && echo proc; echo 1 > /proc/sys/kernel/ns_last_pid || echo ro",
        "root",
        NetworkMode::Default,
    ));
    // Root may mount here: /proc (of the host's pid namespace) and /proc/sys read-only.
    assert_eq!(log.stdout(), "chrooted\nproc\nro\n", "{}", log.stderr());
    let mut entries = common::tree(&f.upper);
    entries.sort();
    assert_eq!(entries, vec!["bin", "bin/cat", "out.txt"], "{entries:?}");
}

#[test]
fn a_chroot_run_gets_dockers_seccomp_profile() {
    let Some(exec) = chroot_executor() else {
        return;
    };
    let f = Fixture::new();
    let Some((script, expected)) = common::seccomp_probes(&f.layers[0]) else {
        return;
    };
    let log = ok(f.run_with(&exec, &script, "alice", NetworkMode::Default));
    // As alice, without capabilities: the filter answers as for root (chroot(NULL) fails on
    // the path before the capability check).
    assert_eq!(log.stdout(), expected, "{}", log.stderr());
}

#[test]
fn a_cancelled_chroot_run_is_killed() {
    let Some(exec) = chroot_executor() else {
        return;
    };
    // A number no other test sleeps for, so its processes can be found on the host.
    let marker = (800_000 + std::process::id() % 100_000).to_string();
    let mut op = common::sleepers(&marker);
    // (A chroot run has no network namespace: `none` is refused.)
    op.network = NetworkMode::Default;
    common::assert_cancel_stops_sleepers(
        &exec,
        &op,
        &marker,
        "the chroot run's processes outlived the cancel",
    );
}
