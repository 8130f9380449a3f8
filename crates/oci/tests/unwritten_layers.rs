//! Layer blobs written when an output needs them (module `images::unwritten`): a commit
//! records the layer's digest and writes no blob; an export makes the blob from the snapshot,
//! byte for byte the tar a commit used to write; a snapshot changed on disk is refused, not
//! exported under the old digest; a `--no-cache` replacement keeps what a tagged image needs.

use std::fs;
use std::path::Path;

use rbuild_cache::{PruneOptions, SnapshotId, Store};
use rbuild_graph::{HistoryEntry, ImageConfig};
use rbuild_oci::export::{export_docker, export_oci_compressed};
use rbuild_oci::images::{commit_image, tag_image};
use rbuild_oci::manifest::ImageManifest;
use rbuild_oci::{compress::Compression, write_tar, OciError};
use rbuild_types::Digest;

fn snapshot(store: &Store, key: &str, fill: impl FnOnce(&Path)) -> SnapshotId {
    let p = store.snapshots().prepare().unwrap();
    fill(&p.upper);
    let id = SnapshotId(Digest::of(key.as_bytes()));
    store.snapshots().commit(p, &id).unwrap();
    id
}

fn config(layers: usize) -> ImageConfig {
    ImageConfig {
        history: (0..layers)
            .map(|i| HistoryEntry {
                created: None,
                created_by: format!("RUN step {i}"),
                comment: None,
                empty_layer: false,
            })
            .collect(),
        ..ImageConfig::default()
    }
}

fn layer_digests(store: &Store, manifest: &Digest) -> Vec<Digest> {
    let m = ImageManifest::parse(&store.blobs().read(manifest).unwrap(), "m").unwrap();
    m.layers.iter().map(|l| l.digest).collect()
}

/// The tar a snapshot directory makes, in memory.
fn tar_of(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    write_tar(dir, &mut out).unwrap();
    out
}

fn fill_app(d: &Path) {
    fs::create_dir_all(d.join("app/sub")).unwrap();
    fs::write(d.join("app/a.txt"), b"alpha").unwrap();
    fs::write(d.join("app/sub/b.bin"), vec![7u8; 70_000]).unwrap();
}

#[test]
fn a_commit_writes_no_layer_blob_and_an_export_makes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let id = snapshot(&store, "copy", fill_app);
    let expected = tar_of(&store.snapshots().path(&id).unwrap());

    let img = commit_image(&store, &[id], &config(1), Some(0)).unwrap();
    let [layer] = layer_digests(&store, &img.manifest_digest)[..] else {
        panic!("one layer")
    };
    assert_eq!(layer, Digest::of(&expected), "the digest is the tar's");
    assert!(!store.blobs().has(&layer), "no layer blob at commit");
    let info = store.layer_info().get(&id).unwrap().unwrap();
    assert_eq!((info.diff_id, info.size), (layer, expected.len() as u64));

    // An uncompressed OCI layout needs the bytes: the blob is made, and is the same tar.
    let out = dir.path().join("layout");
    export_oci_compressed(
        &store,
        &img.manifest_digest,
        &out,
        false,
        &[],
        Compression::None,
    )
    .unwrap();
    assert_eq!(fs::read(store.blobs().path(&layer)).unwrap(), expected);
    assert_eq!(
        fs::read(out.join("blobs/sha256").join(layer.hex())).unwrap(),
        expected
    );
    // A second commit of the same layers finds the same digest without a blob write.
    let again = commit_image(&store, &[id], &config(1), Some(0)).unwrap();
    assert_eq!(again, img);
}

#[test]
fn a_snapshot_changed_on_disk_is_refused_not_exported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let id = snapshot(&store, "copy", fill_app);
    let img = commit_image(&store, &[id], &config(1), Some(0)).unwrap();
    let layer = layer_digests(&store, &img.manifest_digest)[0];
    // Nothing may change a committed snapshot; if something did, the layer cannot be made.
    fs::write(
        store.snapshots().path(&id).unwrap().join("app/a.txt"),
        b"tampered",
    )
    .unwrap();
    let err =
        export_docker(&store, &img.manifest_digest, &dir.path().join("x.tar"), &[]).unwrap_err();
    match &err {
        OciError::LayerChanged(changed) => {
            assert_eq!((changed.digest, changed.snapshot), (layer, id.0));
        }
        other => panic!("expected LayerChanged, got {other}"),
    }
    assert!(err.to_string().contains("cannot be made again"), "{err}");
    assert!(!store.blobs().has(&layer));
    assert!(!dir.path().join("x.tar").exists(), "no partial archive");
}

#[test]
fn a_replaced_snapshot_stays_for_the_tagged_image_that_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let id = snapshot(&store, "run", |d| {
        fs::write(d.join("stamp"), b"first").unwrap()
    });
    let first_tar = tar_of(&store.snapshots().path(&id).unwrap());
    let old = commit_image(&store, &[id], &config(1), Some(0)).unwrap();
    tag_image(&store, "app:old", &old.manifest_digest).unwrap();
    let old_layer = layer_digests(&store, &old.manifest_digest)[0];

    // `--no-cache` runs the step again under the same key, with another result.
    let p = store.snapshots().prepare().unwrap();
    fs::write(p.upper.join("stamp"), b"second").unwrap();
    store.snapshots().replace(p, &id).unwrap();
    let new = commit_image(&store, &[id], &config(1), Some(0)).unwrap();
    let new_layer = layer_digests(&store, &new.manifest_digest)[0];
    assert_ne!(new_layer, old_layer);
    // The old snapshot is kept under its diff_id, and `prune --all` keeps it for the tag.
    assert!(store.snapshots().path(&SnapshotId(old_layer)).is_some());
    store
        .gc()
        .prune(&PruneOptions {
            all: true,
            ..PruneOptions::default()
        })
        .unwrap();

    let out = dir.path().join("old.tar");
    export_docker(&store, &old.manifest_digest, &out, &["app:old".into()]).unwrap();
    assert_eq!(fs::read(store.blobs().path(&old_layer)).unwrap(), first_tar);
}
