//! Garbage collection: tags are the roots; everything else goes.

mod common;

use rbuild_cache::{CacheError, CacheRecord, LayerInfo, SnapshotId, Store};
use rbuild_types::Digest;

use common::temp_store;

fn snapshot(store: &Store, id: Digest, content: &[u8]) {
    let p = store.snapshots().prepare().unwrap();
    std::fs::write(p.upper.join("file"), content).unwrap();
    store.snapshots().commit(p, &SnapshotId(id)).unwrap();
}

#[test]
fn prune_keeps_what_tags_reach() {
    let (_dir, store) = temp_store();

    let layer = store.blobs().put(b"compressed layer bytes").unwrap();
    let diff_id = Digest::of(b"uncompressed layer tar");
    let config = store
        .blobs()
        .put(
            serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]}})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    let manifest = store
        .blobs()
        .put(
            serde_json::json!({
                "schemaVersion": 2,
                "config": {"digest": config.to_string(), "size": 1},
                "layers": [{"digest": layer.to_string(), "size": 1}],
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    let index = store
        .blobs().put(
            serde_json::json!({"schemaVersion": 2, "manifests": [{"digest": manifest.to_string()}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    store.tags().set("app:1", &index).unwrap();
    let garbage = store.blobs().put(b"unreferenced").unwrap();
    let garbage_manifest = store.blobs().put(br#"{"layers":[]}"#).unwrap();

    // A base layer (id = diff_id), a built layer whose tar form is that diff_id, and junk.
    snapshot(&store, diff_id, b"base");
    let built = Digest::of(b"cache key of a RUN");
    snapshot(&store, built, b"built");
    store
        .layer_info()
        .set(&SnapshotId(built), &LayerInfo { diff_id, size: 10 })
        .unwrap();
    let junk = Digest::of(b"cache key of an untagged build");
    snapshot(&store, junk, b"junk");
    store
        .layer_info()
        .set(
            &SnapshotId(junk),
            &LayerInfo {
                diff_id: Digest::of(b"other tar"),
                size: 3,
            },
        )
        .unwrap();

    store
        .index()
        .record(
            &Digest::of(b"k"),
            &CacheRecord {
                layers: vec![SnapshotId(built)],
                created_unix: 0,
                ..Default::default()
            },
        )
        .unwrap();
    store.resolved().set("kept:ref", &manifest).unwrap();
    store.resolved().set("gone:ref", &garbage_manifest).unwrap();
    store
        .steps()
        .set_inputs("Dockerfile#0/1", b"inputs")
        .unwrap();

    let report = store.gc().prune_all().unwrap();
    assert_eq!(report.cache_records, 1);
    assert_eq!(report.blobs, 2);
    assert_eq!(report.snapshots, 1);
    assert!(report.bytes >= b"unreferenced".len() as u64 + 4);

    for kept in [index, manifest, config, layer] {
        assert!(store.blobs().has(&kept), "{kept} kept");
    }
    assert!(!store.blobs().has(&garbage));
    assert!(!store.blobs().has(&garbage_manifest));
    assert!(store.snapshots().path(&SnapshotId(diff_id)).is_some());
    assert!(store.snapshots().path(&SnapshotId(built)).is_some());
    assert!(store.snapshots().path(&SnapshotId(junk)).is_none());
    assert_eq!(store.layer_info().get(&SnapshotId(junk)).unwrap(), None);
    assert!(store
        .layer_info()
        .get(&SnapshotId(built))
        .unwrap()
        .is_some());
    assert_eq!(store.index().lookup(&Digest::of(b"k")).unwrap(), None);
    assert_eq!(store.resolved().get("kept:ref").unwrap(), Some(manifest));
    assert_eq!(store.resolved().get("gone:ref").unwrap(), None);
    assert_eq!(store.tags().get("app:1").unwrap(), Some(index));
    assert_eq!(
        store.steps().inputs("Dockerfile#0/1").unwrap(),
        None,
        "what steps were keyed on goes with the cache records"
    );

    // Pruning again finds nothing more to do.
    let again = store.gc().prune_all().unwrap();
    assert_eq!(
        (again.blobs, again.snapshots, again.cache_records),
        (0, 0, 0)
    );
}

#[test]
fn prune_without_tags_empties_the_store() {
    let (_dir, store) = temp_store();
    store.blobs().put(b"a").unwrap();
    snapshot(&store, Digest::of(b"s"), b"s");
    let report = store.gc().prune_all().unwrap();
    assert_eq!((report.blobs, report.snapshots), (1, 1));
    let usage = store.usage().totals().unwrap();
    assert_eq!((usage.blobs, usage.snapshots), (0, 0));
}

#[test]
fn prune_refuses_while_another_handle_is_open() {
    let (dir, store) = temp_store();
    let other = Store::open(dir.path()).unwrap();
    let d = store.blobs().put(b"in use").unwrap();
    let err = store.gc().prune_all().unwrap_err();
    assert!(matches!(err, CacheError::Busy { .. }), "{err}");
    assert!(store.blobs().has(&d), "nothing removed");
    drop(other);
    store.gc().prune_all().unwrap();
    assert!(!store.blobs().has(&d));
    // Our own shared lock is back: a new opener does not clean our staging.
    let mut w = store.blobs().writer().unwrap();
    std::io::Write::write_all(&mut w, b"x").unwrap();
    let _third = Store::open(dir.path()).unwrap();
    assert_eq!(w.commit(None).unwrap().0, Digest::of(b"x"));
}

#[test]
fn disk_usage_counts_each_part() {
    let (_dir, store) = temp_store();
    store.blobs().put(&[7u8; 1000]).unwrap();
    snapshot(&store, Digest::of(b"s"), &[1u8; 500]);
    store.tags().set("t:1", &Digest::of(b"m")).unwrap();
    let usage = store.usage().totals().unwrap();
    assert_eq!(usage.blobs, 1000);
    assert_eq!(usage.snapshots, 500);
    assert!(usage.index > 0);
}
