//! The diff_id → blob table: round trip across reopen, and pruning drops records of removed blobs.

mod common;

use rbuild_cache::{LayerBlob, Store};
use rbuild_types::Digest;

use common::temp_store;

fn blob_record(digest: Digest) -> LayerBlob {
    LayerBlob {
        digest,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        size: 22,
    }
}

#[test]
fn layer_blob_round_trips_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let diff_id = Digest::of(b"tar");
    let rec = blob_record(Digest::of(b"gz"));
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.layer_blobs().get(&diff_id).unwrap(), None);
        store.layer_blobs().set(&diff_id, &rec).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.layer_blobs().get(&diff_id).unwrap(), Some(rec));
}

#[test]
fn prune_drops_records_of_removed_blobs_and_keeps_tagged_ones() {
    let (_dir, store) = temp_store();
    let kept_layer = store.blobs().put(b"kept compressed layer").unwrap();
    let gone_layer = store.blobs().put(b"unreferenced compressed layer").unwrap();
    let manifest = store
        .blobs()
        .put(
            serde_json::json!({
                "schemaVersion": 2,
                "config": {"digest": Digest::of(b"no config").to_string(), "size": 1},
                "layers": [{"digest": kept_layer.to_string(), "size": 1}],
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    store.tags().set("app:1", &manifest).unwrap();
    let (kept_id, gone_id) = (Digest::of(b"kept tar"), Digest::of(b"gone tar"));
    store
        .layer_blobs()
        .set(&kept_id, &blob_record(kept_layer))
        .unwrap();
    store
        .layer_blobs()
        .set(&gone_id, &blob_record(gone_layer))
        .unwrap();
    store.gc().prune_all().unwrap();
    assert!(!store.blobs().has(&gone_layer));
    assert_eq!(store.layer_blobs().get(&gone_id).unwrap(), None);
    assert_eq!(
        store.layer_blobs().get(&kept_id).unwrap(),
        Some(blob_record(kept_layer))
    );
}
