//! The fixtures themselves: the busybox layout is a consistent OCI layout of what
//! busybox-static holds, and the registry serves it back as pushed.

use std::process::Command;

use rbuild_test_support::http::request;
use rbuild_test_support::images::{blob, busybox_layout, LayoutImage, OCI_MANIFEST};
use rbuild_test_support::registry::BUSYBOX_REPOS;
use rbuild_test_support::Registry;
use rbuild_types::Digest;

#[test]
fn busybox_layout_is_consistent_and_cached() {
    let Some(layout) = busybox_layout() else {
        return;
    };
    let image = LayoutImage::read(&layout);
    assert_eq!(Digest::of(&image.manifest_bytes), image.manifest_digest);
    for d in image.blobs() {
        assert_eq!(Digest::of(&blob(&layout, &d)), d, "blob {d}");
    }
    let [config, layer] = image.blobs()[..] else {
        panic!("one config and one layer: {:?}", image.blobs());
    };
    let config: serde_json::Value = serde_json::from_slice(&blob(&layout, &config)).unwrap();
    // The diff_id is the digest of the uncompressed layer, and the layer holds busybox with
    // its applets.
    let tar = Command::new("gzip")
        .arg("-dc")
        .arg(layout.join("blobs/sha256").join(layer.hex()))
        .output()
        .unwrap();
    assert!(tar.status.success());
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str(),
        Some(Digest::of(&tar.stdout).to_string().as_str())
    );
    let listing = Command::new("tar")
        .args(["-tv", "--numeric-owner"])
        .stdin(std::fs::File::open(layout.join("blobs/sha256").join(layer.hex())).unwrap())
        .arg("-z")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.ends_with("./bin/busybox") && l.contains(" 0/0 ")),
        "{listing}"
    );
    assert!(listing.contains("./bin/sh -> /bin/busybox"), "{listing}");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    // Built once: the second call finds the same layout.
    assert_eq!(busybox_layout(), Some(layout));
}

#[test]
fn the_registry_serves_busybox_as_pushed() {
    let Some(registry) = Registry::with_busybox() else {
        return;
    };
    let image = LayoutImage::read(&busybox_layout().expect("built for the registry"));
    for repo in BUSYBOX_REPOS {
        let got = request(
            &registry.addr,
            "GET",
            &format!("/v2/{repo}/manifests/latest"),
            &[("Accept", OCI_MANIFEST)],
            b"",
        )
        .unwrap();
        assert_eq!(got.status, 200, "{repo}: {got:?}");
        assert_eq!(
            got.header("docker-content-digest"),
            Some(image.manifest_digest.to_string().as_str())
        );
        assert_eq!(got.body, image.manifest_bytes);
    }
    let missing = request(&registry.addr, "GET", "/v2/nope/manifests/latest", &[], b"").unwrap();
    assert_eq!(missing.status, 404);
}
