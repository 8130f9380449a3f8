//! Selective pruning (`--filter until`, `--keep-storage`, LRU), logs, usage detail, step inputs.

mod common;

use std::time::Duration;

use rbuild_cache::{CacheRecord, PruneOptions, SnapshotId, Store};
use rbuild_types::Digest;

use common::temp_store;

fn snapshot(store: &Store, id: Digest, size: usize) {
    let p = store.snapshots().prepare().unwrap();
    std::fs::write(p.upper.join("file"), vec![b'x'; size]).unwrap();
    store.snapshots().commit(p, &SnapshotId(id)).unwrap();
}

/// A built step: a record whose top layer is a snapshot named by its own key, on `base`.
fn built(store: &Store, name: &str, base: Digest, size: usize, used: u64) -> Digest {
    let key = Digest::of(name.as_bytes());
    snapshot(store, key, size);
    store
        .index()
        .record(
            &key,
            &CacheRecord {
                layers: vec![SnapshotId(base), SnapshotId(key)],
                created_unix: used,
                name: name.to_string(),
                last_used_unix: 0,
            },
        )
        .unwrap();
    key
}

/// A base image: one layer, recorded under the image vertex's key.
fn base(store: &Store) -> Digest {
    let layer = Digest::of(b"base layer diff_id");
    snapshot(store, layer, 100);
    store
        .index()
        .record(
            &Digest::of(b"image key"),
            &CacheRecord {
                layers: vec![SnapshotId(layer)],
                created_unix: 10,
                name: "[1/2] FROM busybox".into(),
                last_used_unix: 0,
            },
        )
        .unwrap();
    layer
}

#[test]
fn until_drops_only_old_records_and_their_built_layers() {
    let (_dir, store) = temp_store();
    let b = base(&store);
    let old = built(&store, "old", b, 10, 1_000);
    let new = built(&store, "new", b, 10, 9_000);
    let report = store
        .gc()
        .prune(&PruneOptions {
            until: Some(Duration::from_secs(3_600)),
            now_unix: 10_000,
            ..PruneOptions::default()
        })
        .unwrap();
    // `old` and the base image record (used at 10) are older than an hour.
    assert_eq!(report.cache_records, 2);
    assert_eq!(report.snapshots, 1);
    assert!(store.index().lookup(&old).unwrap().is_none());
    assert!(store.snapshots().path(&SnapshotId(old)).is_none());
    assert!(store.index().lookup(&new).unwrap().is_some());
    // The base layer is still used by `new`, and is not build cache anyway.
    assert!(store.snapshots().path(&SnapshotId(b)).is_some());
}

#[test]
fn keep_storage_drops_least_recently_used_first() {
    let (_dir, store) = temp_store();
    let b = base(&store);
    let a = built(&store, "a", b, 50_000, 100);
    let c = built(&store, "c", b, 50_000, 300);
    let d = built(&store, "d", b, 50_000, 200);
    store.index().touch(&[a], 400).unwrap(); // `a` was used last: `d` is now the oldest
    let total = store.usage().totals().unwrap().total();
    let report = store
        .gc()
        .prune(&PruneOptions {
            keep_storage: Some(total - 20_000),
            now_unix: 1_000,
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.snapshots, 1, "{report}");
    assert!(store.index().lookup(&d).unwrap().is_none());
    assert!(store.index().lookup(&a).unwrap().is_some());
    assert!(store.index().lookup(&c).unwrap().is_some());
    assert!(store.usage().totals().unwrap().total() <= total - 20_000);
}

#[test]
fn without_all_base_layers_stay_with_all_they_go() {
    let (_dir, store) = temp_store();
    let b = base(&store);
    let k = built(&store, "k", b, 10, 5);
    let report = store
        .gc()
        .prune(&PruneOptions {
            keep_storage: Some(0),
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.cache_records, 2);
    assert!(store.snapshots().path(&SnapshotId(k)).is_none());
    assert!(store.snapshots().path(&SnapshotId(b)).is_some());

    base(&store);
    store
        .gc()
        .prune(&PruneOptions {
            all: true,
            keep_storage: Some(0),
            ..PruneOptions::default()
        })
        .unwrap();
    assert!(store.snapshots().path(&SnapshotId(b)).is_none());
}

#[test]
fn logs_are_pruned_with_the_cache() {
    let (_dir, store) = temp_store();
    let first = store.logs().create().unwrap();
    std::fs::write(first.dir.join("1.log"), "hello\n").unwrap();
    let second = store.logs().create().unwrap();
    assert_ne!(first.dir, second.dir);
    assert_eq!(store.logs().list().unwrap().len(), 2);
    assert!(store.usage().totals().unwrap().logs >= 6);
    // Not older than an hour: kept.
    let report = store
        .gc()
        .prune(&PruneOptions {
            until: Some(Duration::from_secs(3_600)),
            now_unix: first.started_unix + 10,
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(report.logs, 0);
    let report = store.gc().prune(&PruneOptions::default()).unwrap();
    assert_eq!(report.logs, 2);
    assert!(store.logs().list().unwrap().is_empty());
}

#[test]
fn usage_detail_names_the_largest_records() {
    let (_dir, store) = temp_store();
    let b = base(&store);
    built(&store, "[2/3] RUN small", b, 10, 1);
    built(&store, "[3/3] RUN big", b, 1_000, 2);
    let du = store.usage().detail().unwrap();
    let names: Vec<&str> = du.records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["[3/3] RUN big", "[1/2] FROM busybox", "[2/3] RUN small"]
    );
    assert_eq!(du.records[0].size, 1_000);
    assert_eq!(du.built_snapshots, 1_010);
    assert_eq!(du.base_snapshots, 100);
}

#[test]
fn step_inputs_round_trip_and_record_step_is_atomic() {
    let (dir, store) = temp_store();
    assert_eq!(store.steps().inputs("scope stage 1").unwrap(), None);
    store.steps().set_inputs("scope stage 1", b"first").unwrap();
    let key = Digest::of(b"k");
    store
        .index()
        .record_step(
            &key,
            &CacheRecord::default(),
            Some(("scope stage 1", b"second")),
        )
        .unwrap();
    assert_eq!(
        store.steps().inputs("scope stage 1").unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert!(store.index().lookup(&key).unwrap().is_some());
    drop(store);
    // Survives reopening.
    let store = Store::open(dir.path()).unwrap();
    assert!(store.steps().inputs("scope stage 1").unwrap().is_some());
}
