//! A real base-image layer, written by GNU tar (the offline busybox image of
//! `rbuild_test_support::images`): unpack, re-tar, unpack, re-tar must be stable, and the
//! unpacked tree must keep what the original layer had.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rbuild_oci::manifest::ImageManifest;
use rbuild_oci::{config, unpack, write_tar};
use rbuild_test_support::images::busybox_layout;
use rbuild_test_support::{privileges, require_root};

fn check_layout(name: &str, layout: &Path) {
    let index = fs::read(layout.join("index.json")).unwrap();
    let blob = |d: &rbuild_types::Digest| layout.join("blobs/sha256").join(d.hex());
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let md: rbuild_types::Digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let m = ImageManifest::parse(&fs::read(blob(&md)).unwrap(), name).unwrap();
    let c = config::parse(&fs::read(blob(&m.config.digest)).unwrap(), name).unwrap();
    let t = tempfile::tempdir().unwrap();
    for (layer, diff_id) in m.layers.iter().zip(&c.diff_ids) {
        let a = t.path().join("a");
        fs::create_dir(&a).unwrap();
        let got = unpack(
            fs::File::open(blob(&layer.digest)).unwrap(),
            &a,
            &privileges(),
        )
        .unwrap();
        assert_eq!(
            got.diff_id, *diff_id,
            "{name}: diff_id of the original layer"
        );
        let mut first = Vec::new();
        let d1 = write_tar(&a, &mut first).unwrap();
        let b = t.path().join("b");
        fs::create_dir(&b).unwrap();
        unpack(&first[..], &b, &privileges()).unwrap();
        let mut second = Vec::new();
        let d2 = write_tar(&b, &mut second).unwrap();
        assert_eq!(d1, d2, "{name}: our tar of the unpacked layer is stable");
        if a.join("bin").exists() {
            let ma = fs::symlink_metadata(a.join("bin")).unwrap();
            let mb = fs::symlink_metadata(b.join("bin")).unwrap();
            assert_eq!(
                (ma.mode(), ma.uid(), ma.mtime()),
                (mb.mode(), mb.uid(), mb.mtime())
            );
        }
        fs::remove_dir_all(&a).unwrap();
        fs::remove_dir_all(&b).unwrap();
    }
}

#[test]
fn busybox_layer_round_trips() {
    if !require_root("to unpack owners and devices") {
        return;
    }
    let Some(layout) = busybox_layout() else {
        return;
    };
    check_layout("busybox", &layout);
}
