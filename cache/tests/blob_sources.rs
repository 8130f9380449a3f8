//! The blob → source repositories table: newest first, bounded, kept across reopen, and
//! pruned with the blobs.

mod common;

use rbuild_cache::{BlobSource, Store, MAX_BLOB_SOURCES};
use rbuild_types::Digest;

use common::temp_store;

fn source(repository: &str) -> BlobSource {
    BlobSource {
        registry: "r.example".into(),
        repository: repository.into(),
    }
}

#[test]
fn sources_are_newest_first_bounded_and_kept_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let blob = Digest::of(b"layer");
    {
        let store = Store::open(dir.path()).unwrap();
        assert!(store.blob_sources().get(&blob).unwrap().is_empty());
        for repo in ["a", "b", "a"] {
            store.blob_sources().add(&blob, source(repo)).unwrap();
        }
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.blob_sources().get(&blob).unwrap(),
        [source("a"), source("b")]
    );
    for i in 0..10 {
        store
            .blob_sources()
            .add(&blob, source(&format!("r{i}")))
            .unwrap();
    }
    let kept = store.blob_sources().get(&blob).unwrap();
    assert_eq!(kept.len(), MAX_BLOB_SOURCES);
    assert_eq!(kept[0], source("r9"));
}

#[test]
fn prune_drops_the_sources_of_removed_blobs() {
    let (_dir, store) = temp_store();
    let gone = store.blobs().put(b"unreferenced layer").unwrap();
    store.blob_sources().add(&gone, source("app")).unwrap();
    store.gc().prune_all().unwrap();
    assert!(!store.blobs().has(&gone));
    assert!(store.blob_sources().get(&gone).unwrap().is_empty());
}
