//! Snapshots: prepare, commit, discard, commit twice.

mod common;

use rbuild_cache::{SnapshotId, Store};
use rbuild_types::Digest;

use common::temp_store;

/// Staging entries in `tmp/`, not counting the handle's snapshot journal (`unsynced-…`,
/// removed when the handle syncs).
fn tmp_entries(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with("unsynced-"))
        .count()
}

#[test]
fn prepare_gives_empty_dirs_on_the_store_filesystem() {
    use std::os::unix::fs::MetadataExt;
    let (dir, store) = temp_store();
    let p = store.snapshots().prepare().unwrap();
    assert!(p.upper.is_dir() && p.work.is_dir());
    assert_eq!(std::fs::read_dir(&p.upper).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&p.work).unwrap().count(), 0);
    assert!(p.upper.starts_with(dir.path().join("tmp")));
    let dev = |x: &std::path::Path| std::fs::metadata(x).unwrap().dev();
    assert_eq!(dev(&p.upper), dev(&dir.path().join("snapshots")));
    // Two preparations never share directories.
    let q = store.snapshots().prepare().unwrap();
    assert_ne!(p.upper, q.upper);
}

#[test]
fn dropped_prepared_snapshot_leaves_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store) = temp_store();
    let p = store.snapshots().prepare().unwrap();
    std::fs::create_dir_all(p.upper.join("usr/lib")).unwrap();
    std::fs::write(p.upper.join("usr/lib/x"), b"x").unwrap();
    // A RUN may leave a directory without write permission.
    std::fs::set_permissions(p.upper.join("usr"), std::fs::Permissions::from_mode(0o555)).unwrap();
    drop(p);
    assert_eq!(tmp_entries(&store), 0);
    assert_eq!(
        std::fs::read_dir(dir.path().join("snapshots"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn commit_publishes_and_is_visible_only_after() {
    let (dir, store) = temp_store();
    let id = SnapshotId(Digest::of(b"layer"));
    assert_eq!(store.snapshots().path(&id), None);
    let p = store.snapshots().prepare().unwrap();
    std::fs::write(p.upper.join("hello"), b"world").unwrap();
    assert_eq!(store.snapshots().path(&id), None, "invisible while staging");
    let path = store.snapshots().commit(p, &id).unwrap();
    assert_eq!(path, dir.path().join("snapshots").join(id.0.hex()));
    assert_eq!(store.snapshots().path(&id), Some(path.clone()));
    assert_eq!(std::fs::read(path.join("hello")).unwrap(), b"world");
    // The work dir goes in the background; it is gone once the handle has synced.
    store.sync().unwrap();
    assert_eq!(tmp_entries(&store), 0, "work dir discarded");
}

#[test]
fn commit_twice_keeps_the_first() {
    let (_dir, store) = temp_store();
    let id = SnapshotId(Digest::of(b"same key"));
    let p1 = store.snapshots().prepare().unwrap();
    std::fs::write(p1.upper.join("f"), b"first").unwrap();
    let p2 = store.snapshots().prepare().unwrap();
    std::fs::write(p2.upper.join("f"), b"second").unwrap();
    let a = store.snapshots().commit(p1, &id).unwrap();
    let b = store.snapshots().commit(p2, &id).unwrap();
    assert_eq!(a, b);
    assert_eq!(std::fs::read(a.join("f")).unwrap(), b"first");
    store.sync().unwrap();
    assert_eq!(tmp_entries(&store), 0, "second staging discarded");
}

#[test]
fn racing_commits_of_one_id_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    let id = SnapshotId(Digest::of(b"raced"));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let s = store.clone();
            std::thread::spawn(move || {
                let p = s.snapshots().prepare().unwrap();
                std::fs::write(p.upper.join("who"), format!("{i}")).unwrap();
                s.snapshots().commit(p, &id).unwrap()
            })
        })
        .collect();
    let paths: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(paths.iter().all(|p| p == &paths[0]));
    assert!(paths[0].join("who").is_file());
    store.sync().unwrap();
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn snapshots_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let id = SnapshotId(Digest::of(b"persist"));
    {
        let store = Store::open(dir.path()).unwrap();
        let p = store.snapshots().prepare().unwrap();
        std::fs::write(p.upper.join("a"), b"1").unwrap();
        store.snapshots().commit(p, &id).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let path = store.snapshots().path(&id).unwrap();
    assert_eq!(std::fs::read(path.join("a")).unwrap(), b"1");
}
