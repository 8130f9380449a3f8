//! A real base-image layer (the busybox anchor): unpack, re-tar, unpack, re-tar must be stable,
//! and the unpacked tree must keep what the original layer had. (`check_anchor("debian")`
//! passes too but takes ~40 s in a debug build, so it is not part of the default run.)

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rbuild_oci::manifest::ImageManifest;
use rbuild_oci::{config, unpack, write_tar};

fn check_anchor(name: &str) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: real layer {name} because unpacking owners and devices needs root");
        return;
    }
    let layout = Path::new("/var/tmp/anchors/oci").join(name);
    let Ok(index) = fs::read(layout.join("index.json")) else {
        eprintln!(
            "SKIPPED: real layer {name} because {} is missing",
            layout.display()
        );
        return;
    };
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
        let got = unpack(fs::File::open(blob(&layer.digest)).unwrap(), &a).unwrap();
        assert_eq!(
            got.diff_id, *diff_id,
            "{name}: diff_id of the original layer"
        );
        let mut first = Vec::new();
        let d1 = write_tar(&a, &mut first).unwrap();
        let b = t.path().join("b");
        fs::create_dir(&b).unwrap();
        unpack(&first[..], &b).unwrap();
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
    check_anchor("busybox");
}
