//! Content store: verify-then-publish, idempotence, corruption detection.

mod common;

use std::io::Write;

use rbuild_cache::{CacheError, Store};
use rbuild_types::Digest;

use common::temp_store;

fn tmp_entries(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("tmp")).unwrap().count()
}

#[test]
fn put_read_round_trip() {
    let (dir, store) = temp_store();
    let d = store.blobs().put(b"hello").unwrap();
    assert_eq!(d, Digest::of(b"hello"));
    assert!(store.blobs().has(&d));
    assert_eq!(
        store.blobs().path(&d),
        dir.path().join("blobs/sha256").join(d.hex())
    );
    assert_eq!(store.blobs().read(&d).unwrap(), b"hello");
    // Putting the same content again is a no-op success.
    assert_eq!(store.blobs().put(b"hello").unwrap(), d);
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn writer_streams_and_verifies_expected() {
    let (_dir, store) = temp_store();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let want = Digest::of(&data);
    let mut w = store.blobs().writer().unwrap();
    for chunk in data.chunks(7777) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.size(), data.len() as u64);
    let (d, size) = w.commit(Some(&want)).unwrap();
    assert_eq!((d, size), (want, data.len() as u64));
    assert_eq!(std::fs::read(store.blobs().path(&d)).unwrap(), data);
}

#[test]
fn wrong_expected_digest_publishes_nothing() {
    let (dir, store) = temp_store();
    let wrong = Digest::of(b"something else");
    let mut w = store.blobs().writer().unwrap();
    w.write_all(b"actual content").unwrap();
    match w.commit(Some(&wrong)) {
        Err(CacheError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, Digest::of(b"actual content"));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(!store.blobs().has(&Digest::of(b"actual content")));
    assert!(!store.blobs().has(&wrong));
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(tmp_entries(&store), 0, "staging file removed");
}

#[test]
fn dropped_writer_leaves_nothing() {
    let (_dir, store) = temp_store();
    let mut w = store.blobs().writer().unwrap();
    w.write_all(b"half a layer").unwrap();
    assert_eq!(tmp_entries(&store), 1);
    drop(w);
    assert_eq!(tmp_entries(&store), 0);
    assert!(!store.blobs().has(&Digest::of(b"half a layer")));
}

#[test]
fn missing_and_corrupt_blobs_are_errors() {
    let (_dir, store) = temp_store();
    let missing = Digest::of(b"nope");
    assert!(matches!(
        store.blobs().read(&missing),
        Err(CacheError::BlobNotFound { digest, .. }) if digest == missing
    ));
    let d = store.blobs().put(b"good").unwrap();
    std::fs::write(store.blobs().path(&d), b"evil").unwrap();
    let err = store.blobs().read(&d).unwrap_err();
    assert!(matches!(err, CacheError::CorruptBlob { .. }), "{err}");
    assert!(
        err.to_string().contains(&d.hex()),
        "error names the blob: {err}"
    );
}

#[test]
fn stale_staging_is_cleaned_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let _store = Store::open(dir.path()).unwrap();
    }
    // Simulate a process killed mid-write and mid-snapshot.
    std::fs::write(dir.path().join("tmp/blob-1-2-3"), b"partial").unwrap();
    std::fs::create_dir_all(dir.path().join("tmp/snap-1-2-3/upper/etc")).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn staging_of_a_live_store_is_kept_by_a_second_opener() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    let mut w = first.blobs().writer().unwrap();
    w.write_all(b"in flight").unwrap();
    // Another opener (think: another process) must not delete in-flight staging.
    let second = Store::open(dir.path()).unwrap();
    assert_eq!(tmp_entries(&second), 1);
    let (d, _) = w.commit(None).unwrap();
    assert!(second.blobs().has(&d));
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

#[test]
fn concurrent_writers_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let s = store.clone();
            std::thread::spawn(move || {
                let same = s.blobs().put(b"shared").unwrap();
                let own = s.blobs().put(format!("own {i}").as_bytes()).unwrap();
                (same, own)
            })
        })
        .collect();
    for h in handles {
        let (same, own) = h.join().unwrap();
        assert_eq!(same, Digest::of(b"shared"));
        assert!(store.blobs().has(&own));
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        9
    );
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn a_producer_hashed_stream_is_published_under_the_producers_digest_only() {
    let (_dir, store) = temp_store();
    let data = b"a layer tar whose emitter hashed it";
    let want = Digest::of(data);
    let mut w = store.blobs().writer_hashed_by_producer().unwrap();
    w.write_all(data).unwrap();
    assert_eq!(w.commit(Some(&want)).unwrap(), (want, data.len() as u64));
    assert_eq!(store.blobs().read(&want).unwrap(), data);

    // Without the producer's digest nothing is published.
    let mut w = store.blobs().writer_hashed_by_producer().unwrap();
    w.write_all(b"unnamed").unwrap();
    assert!(w.commit(None).is_err());
    assert!(!store.blobs().has(&Digest::of(b"unnamed")));
    assert_eq!(tmp_entries(&store), 0);
}
