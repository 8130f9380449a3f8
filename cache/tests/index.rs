//! Cache index, layer info, tags and resolved references: round trips that survive reopen.

mod common;

use rbuild_cache::{CacheRecord, LayerInfo, SnapshotId, Store};
use rbuild_types::Digest;

use common::temp_store;

#[test]
fn cache_records_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = Digest::of(b"key");
    let rec = CacheRecord {
        layers: vec![SnapshotId(Digest::of(b"l1")), SnapshotId(Digest::of(b"l2"))],
        created_unix: 1_700_000_000,
        ..Default::default()
    };
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.index().lookup(&key).unwrap(), None);
        store.index().record(&key, &rec).unwrap();
        assert_eq!(store.index().lookup(&key).unwrap(), Some(rec.clone()));
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.index().lookup(&key).unwrap(), Some(rec.clone()));
    // Replacing a record.
    let newer = CacheRecord {
        layers: vec![],
        created_unix: 1,
        ..Default::default()
    };
    store.index().record(&key, &newer).unwrap();
    assert_eq!(store.index().lookup(&key).unwrap(), Some(newer));
    assert_eq!(store.index().lookup(&Digest::of(b"other")).unwrap(), None);
}

#[test]
fn layer_info_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let id = SnapshotId(Digest::of(b"snap"));
    let info = LayerInfo {
        diff_id: Digest::of(b"tar"),
        size: 12345,
    };
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.layer_info().get(&id).unwrap(), None);
        store.layer_info().set(&id, &info).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.layer_info().get(&id).unwrap(), Some(info));
}

#[test]
fn tags_set_list_sorted_remove() {
    let dir = tempfile::tempdir().unwrap();
    let m1 = Digest::of(b"m1");
    let m2 = Digest::of(b"m2");
    {
        let store = Store::open(dir.path()).unwrap();
        assert!(store.tags().list().unwrap().is_empty());
        store.tags().set("zeta:1", &m1).unwrap();
        store.tags().set("app:1.0", &m1).unwrap();
        store.tags().set("app:latest", &m2).unwrap();
        store.tags().set("app:1.0", &m2).unwrap(); // retag
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.tags().get("app:1.0").unwrap(), Some(m2));
    assert_eq!(store.tags().get("missing:1").unwrap(), None);
    assert_eq!(
        store.tags().list().unwrap(),
        vec![
            ("app:1.0".to_string(), m2),
            ("app:latest".to_string(), m2),
            ("zeta:1".to_string(), m1),
        ]
    );
    assert!(store.tags().remove("app:latest").unwrap());
    assert!(!store.tags().remove("app:latest").unwrap());
    assert_eq!(store.tags().list().unwrap().len(), 2);
}

#[test]
fn resolved_references_round_trip() {
    let (dir, store) = temp_store();
    let r = "docker.io/library/busybox:latest";
    assert_eq!(store.resolved().get(r).unwrap(), None);
    store.resolved().set(r, &Digest::of(b"bb")).unwrap();
    assert_eq!(store.resolved().get(r).unwrap(), Some(Digest::of(b"bb")));
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.resolved().get(r).unwrap(), Some(Digest::of(b"bb")));
}

#[test]
fn two_handles_on_one_root_share_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let a = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    let b = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..16u64)
        .map(|i| {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                let key = Digest::of(&i.to_le_bytes());
                s.index()
                    .record(
                        &key,
                        &CacheRecord {
                            layers: vec![],
                            created_unix: i,
                            ..Default::default()
                        },
                    )
                    .unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for i in 0..16u64 {
        let rec = b
            .index()
            .lookup(&Digest::of(&i.to_le_bytes()))
            .unwrap()
            .unwrap();
        assert_eq!(rec.created_unix, i);
    }
}
