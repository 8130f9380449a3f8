//! Crash safety and sharing across processes. The test binary re-executes itself: a child
//! (selected by environment variable) works on a store and is killed with SIGKILL, or two
//! children write to one store at the same time; the parent checks what the next open sees.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use rbuild_cache::{CacheRecord, SnapshotId, Store};
use rbuild_types::Digest;

const CHILD_ROOT: &str = "RBUILD_CACHE_TEST_CHILD_ROOT";
const CHILD_ROLE: &str = "RBUILD_CACHE_TEST_CHILD_ROLE";

fn run_child(test: &str, root: &Path, role: &str) -> std::process::Child {
    let exe = std::env::current_exe().unwrap();
    Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ROOT, root)
        .env(CHILD_ROLE, role)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn rec(i: u64) -> CacheRecord {
    CacheRecord {
        layers: vec![SnapshotId(Digest::of(&i.to_le_bytes()))],
        created_unix: i,
        ..Default::default()
    }
}

/// The child half of `killed_mid_work_leaves_a_usable_store`; a no-op when run normally.
#[test]
fn child_killed_mid_work() {
    let Some(root) = std::env::var_os(CHILD_ROOT) else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    store.put_blob(b"committed before the kill").unwrap();
    store.record(&Digest::of(b"done"), &rec(1)).unwrap();
    let p = store.prepare_snapshot().unwrap();
    std::fs::write(p.upper.join("half"), b"unfinished layer").unwrap();
    let mut w = store.blob_writer().unwrap();
    w.write_all(b"unfinished blob").unwrap();
    w.flush().unwrap();
    // Die with the index open, a snapshot staged and a blob half written: no destructors run.
    // SAFETY: plain syscalls on our own pid.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

#[test]
fn killed_mid_work_leaves_a_usable_store() {
    if std::env::var_os(CHILD_ROOT).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = run_child("child_killed_mid_work", dir.path(), "kill")
        .wait()
        .unwrap();
    assert!(!status.success(), "child was killed");
    assert!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count() >= 2,
        "the kill left staging behind"
    );
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "stale staging cleaned on open"
    );
    assert!(store.has_blob(&Digest::of(b"committed before the kill")));
    assert!(!store.has_blob(&Digest::of(b"unfinished blob")));
    assert_eq!(store.lookup(&Digest::of(b"done")).unwrap(), Some(rec(1)));
    // The index still takes writes.
    store.record(&Digest::of(b"after"), &rec(2)).unwrap();
    assert_eq!(store.lookup(&Digest::of(b"after")).unwrap(), Some(rec(2)));
}

/// The child half of `two_processes_share_one_store`; a no-op when run normally.
#[test]
fn child_writer() {
    let (Some(root), Some(role)) = (std::env::var_os(CHILD_ROOT), std::env::var(CHILD_ROLE).ok())
    else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    let base: u64 = role.parse().unwrap();
    for i in base..base + 30 {
        store
            .record(&Digest::of(&i.to_le_bytes()), &rec(i))
            .unwrap();
        store.put_blob(format!("blob {i}").as_bytes()).unwrap();
        store.put_blob(b"same in both").unwrap();
        assert!(store
            .lookup(&Digest::of(&i.to_le_bytes()))
            .unwrap()
            .is_some());
    }
    store
        .set_tag(&format!("img:{base}"), &Digest::of(b"m"))
        .unwrap();
}

#[test]
fn two_processes_share_one_store() {
    if std::env::var_os(CHILD_ROOT).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut a = run_child("child_writer", dir.path(), "0");
    let mut b = run_child("child_writer", dir.path(), "1000");
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let store = Store::open(dir.path()).unwrap();
    for i in (0..30u64).chain(1000..1030) {
        assert_eq!(
            store.lookup(&Digest::of(&i.to_le_bytes())).unwrap(),
            Some(rec(i))
        );
        assert!(store.has_blob(&Digest::of(format!("blob {i}").as_bytes())));
    }
    assert_eq!(store.tags().unwrap().len(), 2);
}
