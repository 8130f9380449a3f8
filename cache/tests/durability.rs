//! Deferred snapshot durability: a journal per store handle, one sync when the handle goes,
//! and recovery of what a killed process left unsynced. The crash test re-executes this test
//! binary as a child that commits a snapshot and SIGKILLs itself.

use std::path::Path;
use std::process::Command;

use rbuild_cache::{SnapshotId, Store};
use rbuild_types::Digest;

const CHILD_ROOT: &str = "RBUILD_CACHE_DURABILITY_CHILD_ROOT";

fn journals(root: &Path) -> usize {
    std::fs::read_dir(root.join("tmp"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("unsynced-"))
        .count()
}

fn commit(store: &Store, name: &str) -> SnapshotId {
    let id = SnapshotId(Digest::of(name.as_bytes()));
    let p = store.prepare_snapshot().unwrap();
    std::fs::write(p.upper.join("f"), name).unwrap();
    store.commit_snapshot(p, &id).unwrap();
    id
}

#[test]
fn journal_lives_until_sync_or_drop() {
    if std::env::var_os(CHILD_ROOT).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(journals(dir.path()), 0, "nothing committed, no journal");
    let a = commit(&store, "a");
    let b = commit(&store, "b");
    assert_eq!(journals(dir.path()), 1, "one journal per handle");
    store.sync().unwrap();
    assert_eq!(journals(dir.path()), 0);
    store.sync().unwrap(); // nothing pending: a no-op
    let c = commit(&store, "c");
    assert_eq!(journals(dir.path()), 1);
    drop(store);
    assert_eq!(journals(dir.path()), 0, "dropping the handle syncs");
    let store = Store::open(dir.path()).unwrap();
    for id in [a, b, c] {
        assert!(store.snapshot_path(&id).is_some(), "synced snapshots stay");
    }
}

/// The child half of `unsynced_snapshots_of_a_killed_process_are_dropped`.
#[test]
fn child_commits_and_dies() {
    let Some(root) = std::env::var_os(CHILD_ROOT) else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    commit(&store, "unsynced");
    // Die before the handle's final sync: no destructors run.
    // SAFETY: plain syscalls on our own pid.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

#[test]
fn unsynced_snapshots_of_a_killed_process_are_dropped() {
    if std::env::var_os(CHILD_ROOT).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kept = {
        let store = Store::open(dir.path()).unwrap();
        commit(&store, "synced")
    };
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_commits_and_dies", "--test-threads=1"])
        .env(CHILD_ROOT, dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was killed");
    let unsynced = SnapshotId(Digest::of(b"unsynced"));
    assert_eq!(journals(dir.path()), 1, "the kill left the journal");
    assert!(dir.path().join("snapshots").join(unsynced.0.hex()).is_dir());
    // The next exclusive open cannot know whether the machine lost power: it drops what the
    // journal lists (a cache miss), keeps the rest, and the store takes the snapshot again.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(journals(dir.path()), 0);
    assert!(store.snapshot_path(&unsynced).is_none());
    assert!(store.snapshot_path(&kept).is_some());
    assert_eq!(commit(&store, "unsynced"), unsynced);
    assert!(store.snapshot_path(&unsynced).is_some());
}
