//! Crash safety and sharing across processes. A child process (`rbuild-cache-test-child`)
//! works on a store and is killed with SIGKILL, or two children write to one store at the same
//! time; the test checks what the next open sees.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use rbuild_cache::{CacheRecord, SnapshotId, Store};
use rbuild_types::Digest;

fn run_child(role: &str, root: &Path, base: Option<&str>) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_rbuild-cache-test-child"))
        .arg(role)
        .arg(root)
        .args(base)
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

#[test]
fn killed_mid_work_leaves_a_usable_store() {
    let dir = tempfile::tempdir().unwrap();
    let status = run_child("killed-mid-work", dir.path(), None)
        .wait()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "child was killed");
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
    assert!(store.blobs().has(&Digest::of(b"committed before the kill")));
    assert!(!store.blobs().has(&Digest::of(b"unfinished blob")));
    // A record older than the durability window survives; the one just before the kill may
    // or may not (a cache miss at worst), and the index is consistent either way.
    assert_eq!(
        store.index().lookup(&Digest::of(b"done")).unwrap(),
        Some(rec(1))
    );
    let just_before = store.index().lookup(&Digest::of(b"just before")).unwrap();
    assert!(just_before.is_none() || just_before == Some(rec(3)));
    // The index still takes writes.
    store
        .index()
        .record(&Digest::of(b"after"), &rec(2))
        .unwrap();
    assert_eq!(
        store.index().lookup(&Digest::of(b"after")).unwrap(),
        Some(rec(2))
    );
}

#[test]
fn two_processes_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = run_child("writer", dir.path(), Some("0"));
    let mut b = run_child("writer", dir.path(), Some("1000"));
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let store = Store::open(dir.path()).unwrap();
    for i in (0..30u64).chain(1000..1030) {
        assert_eq!(
            store.index().lookup(&Digest::of(&i.to_le_bytes())).unwrap(),
            Some(rec(i))
        );
        assert!(store
            .blobs()
            .has(&Digest::of(format!("blob {i}").as_bytes())));
    }
    assert_eq!(store.tags().list().unwrap().len(), 2);
}
