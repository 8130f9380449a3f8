//! The stored manifest → repo digests table: one entry per repository, newest first, kept
//! across reopen, and pruned with the manifests.

mod common;

use rbuild_cache::{RepoDigest, Store};
use rbuild_types::Digest;

use common::temp_store;

fn entry(repository: &str, pushed: &[u8]) -> RepoDigest {
    RepoDigest {
        registry: "r.example".into(),
        repository: repository.into(),
        digest: Digest::of(pushed),
    }
}

#[test]
fn one_entry_per_repository_newest_first_kept_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = Digest::of(b"manifest");
    {
        let store = Store::open(dir.path()).unwrap();
        assert!(store.repo_digests().get(&manifest).unwrap().is_empty());
        store
            .repo_digests()
            .add(&manifest, entry("a", b"1"))
            .unwrap();
        store
            .repo_digests()
            .add(&manifest, entry("b", b"2"))
            .unwrap();
        store
            .repo_digests()
            .add(&manifest, entry("a", b"3"))
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.repo_digests().get(&manifest).unwrap(),
        [entry("a", b"3"), entry("b", b"2")]
    );
}

#[test]
fn prune_drops_the_digests_of_removed_manifests() {
    let (_dir, store) = temp_store();
    let gone = store.blobs().put(b"an untagged manifest").unwrap();
    store.repo_digests().add(&gone, entry("app", b"1")).unwrap();
    store.gc().prune_all().unwrap();
    assert!(!store.blobs().has(&gone));
    assert!(store.repo_digests().get(&gone).unwrap().is_empty());
}
