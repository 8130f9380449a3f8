//! Deferred snapshot durability: a journal per store handle, one sync when the handle goes,
//! and recovery of what a killed process left unsynced. The crash test runs a child process
//! (`rbuild-cache-test-child`) that commits a snapshot and SIGKILLs itself.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use rbuild_cache::{SnapshotId, Store};
use rbuild_types::Digest;

use common::temp_store;

fn journals(root: &Path) -> usize {
    std::fs::read_dir(root.join("tmp"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("unsynced-"))
        .count()
}

fn commit(store: &Store, name: &str) -> SnapshotId {
    let id = SnapshotId(Digest::of(name.as_bytes()));
    let p = store.snapshots().prepare().unwrap();
    std::fs::write(p.upper.join("f"), name).unwrap();
    store.snapshots().commit(p, &id).unwrap();
    id
}

#[test]
fn journal_lives_until_sync_or_drop() {
    let (dir, store) = temp_store();
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
        assert!(
            store.snapshots().path(&id).is_some(),
            "synced snapshots stay"
        );
    }
}

#[test]
fn unsynced_snapshots_of_a_killed_process_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let kept = {
        let store = Store::open(dir.path()).unwrap();
        commit(&store, "synced")
    };
    let status = Command::new(env!("CARGO_BIN_EXE_rbuild-cache-test-child"))
        .arg("commits-and-dies")
        .arg(dir.path())
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the child was killed");
    let unsynced = SnapshotId(Digest::of(b"unsynced"));
    assert_eq!(journals(dir.path()), 1, "the kill left the journal");
    assert!(dir.path().join("snapshots").join(unsynced.0.hex()).is_dir());
    // The next exclusive open cannot know whether the machine lost power: it drops what the
    // journal lists (a cache miss), keeps the rest, and the store takes the snapshot again.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(journals(dir.path()), 0);
    assert!(store.snapshots().path(&unsynced).is_none());
    assert!(store.snapshots().path(&kept).is_some());
    assert_eq!(commit(&store, "unsynced"), unsynced);
    assert!(store.snapshots().path(&unsynced).is_some());
}
