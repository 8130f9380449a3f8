//! Local image store and exporters, checked with skopeo and umoci where installed.

use std::fs;
use std::path::Path;
use std::process::Command;

use rbuild_archive::testutil;
use rbuild_cache::{LayerInfo, SnapshotId, Store};
use rbuild_graph::{HistoryEntry, ImageConfig};
use rbuild_oci::export::{export_docker, export_local, export_oci, export_rootfs_tar};
use rbuild_oci::images::{commit_image, list_images, load_image, tag_image, StoredImage};
use rbuild_oci::manifest::{ImageManifest, OCI_LAYER, OCI_LAYER_GZIP};
use rbuild_oci::{config, unpack, OciError};
use rbuild_test_support::images::busybox_layout;
use rbuild_test_support::{is_root, privileges, require_root, require_tool};
use rbuild_types::Digest;

fn tool(name: &str) -> bool {
    require_tool(name).is_some()
}

/// Makes a snapshot with id H(key) whose content `fill` writes.
fn snapshot(store: &Store, key: &str, fill: impl FnOnce(&Path)) -> SnapshotId {
    let p = store.snapshots().prepare().unwrap();
    fill(&p.upper);
    let id = SnapshotId(Digest::of(key.as_bytes()));
    store.snapshots().commit(p, &id).unwrap();
    id
}

fn hist(by: &str, empty: bool) -> HistoryEntry {
    HistoryEntry {
        created: None,
        created_by: by.into(),
        comment: None,
        empty_layer: empty,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    layers: Vec<SnapshotId>,
    config: ImageConfig,
}

impl Fixture {
    /// The fixture's image, committed with a fixed creation time.
    fn commit(&self) -> StoredImage {
        commit_image(&self.store, &self.layers, &self.config, Some(1_700_000_000)).unwrap()
    }
}

/// The manifest stored as blob `digest`.
fn stored_manifest(store: &Store, digest: &Digest) -> ImageManifest {
    ImageManifest::parse(&store.blobs().read(digest).unwrap(), "m").unwrap()
}

/// Blob `digest` of the OCI layout at `layout`.
fn layout_blob(layout: &Path, digest: &Digest) -> Vec<u8> {
    fs::read(layout.join("blobs/sha256").join(digest.hex())).unwrap()
}

/// The `index.json` of the OCI layout at `layout`.
fn layout_index(layout: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap()
}

/// The digest of the first manifest an index lists.
fn first_manifest(index: &serde_json::Value) -> Digest {
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Asserts that the layer blob at `path` unpacks to the layer `diff_id`.
fn assert_unpacks_to(path: &Path, diff_id: &Digest) {
    let scratch = tempfile::tempdir().unwrap();
    let blob = fs::File::open(path).unwrap();
    assert_eq!(
        unpack(blob, scratch.path(), &privileges()).unwrap().diff_id,
        *diff_id
    );
}

/// Runs `cmd`, which must succeed (otherwise its stderr is shown under `what`); its stdout.
fn run_ok(cmd: &mut Command, what: &str) -> Vec<u8> {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// `skopeo inspect <image>`, which must succeed: its output.
fn skopeo_inspect(image: String) -> serde_json::Value {
    let out = run_ok(
        Command::new("skopeo").arg("inspect").arg(&image),
        &format!("skopeo inspect {image}"),
    );
    serde_json::from_slice(&out).unwrap()
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let l1 = snapshot(&store, "l1", |d| {
        fs::create_dir_all(d.join("bin")).unwrap();
        fs::write(d.join("bin/hello"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::create_dir_all(d.join("etc")).unwrap();
        fs::write(d.join("etc/old"), b"old").unwrap();
    });
    let l2 = snapshot(&store, "l2", |d| {
        fs::create_dir_all(d.join("etc")).unwrap();
        fs::write(d.join("etc/new"), b"new").unwrap();
        if is_root() {
            nix::sys::stat::mknod(
                &d.join("etc/old"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .unwrap();
        }
    });
    let l3 = snapshot(&store, "l3", |_| {});
    let mut config = ImageConfig {
        cmd: Some(vec!["/bin/hello".into()]),
        ..ImageConfig::default()
    };
    config.history = vec![
        hist("COPY hello /bin/", false),
        hist("ENV A=1", true),
        hist("RUN add new", false),
        hist("RUN true", false),
    ];
    config.set_env("A", "1");
    Fixture {
        _dir: dir,
        store,
        layers: vec![l1, l2, l3],
        config,
    }
}

#[test]
fn commit_keeps_empty_layers_and_tags() {
    let f = fixture();
    let img = f.commit();
    let m = stored_manifest(&f.store, &img.manifest_digest);
    // As BuildKit: a step that changed nothing keeps its layer, the empty tar.
    assert_eq!(m.layers.len(), 3, "the empty RUN layer is kept");
    let empty_tar = rbuild_types::Digest::of(&[0u8; 1024]);
    assert_eq!(m.layers[2].digest, empty_tar);
    assert!(m.layers.iter().all(|l| l.media_type == OCI_LAYER));
    let c = config::parse(&f.store.blobs().read(&img.config_digest).unwrap(), "c").unwrap();
    assert_eq!(
        c.diff_ids,
        m.layers.iter().map(|l| l.digest).collect::<Vec<_>>()
    );
    assert!(!c.image.history[3].empty_layer);
    assert!(!c.image.history[2].empty_layer);
    assert_eq!(c.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert!(c
        .image
        .history
        .iter()
        .all(|h| h.created.as_deref() == Some("2023-11-14T22:13:20Z")));

    // Same inputs, same image id and manifest (layers are not re-tarred the second time).
    let again = commit_image(&f.store, &f.layers, &f.config, Some(1_700_000_000)).unwrap();
    assert_eq!(again, img);

    tag_image(&f.store, "app:1.0", &img.manifest_digest).unwrap();
    let list = list_images(&f.store).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "app:1.0");
    assert_eq!(list[0].id, img.config_digest);
    for r in [
        "app:1.0",
        "docker.io/library/app:1.0",
        &img.config_digest.hex()[..12],
    ] {
        assert_eq!(
            load_image(&f.store, r).unwrap().manifest_digest,
            img.manifest_digest,
            "{r}"
        );
    }
    assert!(matches!(
        load_image(&f.store, "nope:1"),
        Err(OciError::ImageNotFound(_))
    ));
}

#[test]
fn source_date_epoch_clamps_built_layers() {
    let f = fixture();
    let opts = rbuild_oci::images::CommitOptions {
        created: Some(1_000),
        mtime_clamp: Some(1_000),
        ..Default::default()
    };
    let img = rbuild_oci::images::commit_image_with(&f.store, &f.layers, &f.config, &opts).unwrap();
    let m = stored_manifest(&f.store, &img.manifest_digest);
    for l in &m.layers {
        let bytes = f.store.blobs().read(&l.digest).unwrap();
        for e in testutil::list(&bytes[..]).unwrap() {
            assert!(e.mtime <= 1_000);
        }
    }
    // Reproducible: committing again gives the same image.
    let again =
        rbuild_oci::images::commit_image_with(&f.store, &f.layers, &f.config, &opts).unwrap();
    assert_eq!(again, img);
    // The unclamped commit is a different image, and does not reuse the clamped tars.
    let plain = commit_image(&f.store, &f.layers, &f.config, Some(1_000)).unwrap();
    assert_ne!(plain.config_digest, img.config_digest);
}

#[test]
fn history_layer_count_mismatch_is_an_error() {
    let f = fixture();
    let err = commit_image(&f.store, &f.layers[..2], &f.config, Some(0)).unwrap_err();
    assert!(
        matches!(
            err,
            OciError::HistoryMismatch {
                layers: 2,
                history: 3
            }
        ),
        "{err}"
    );
}

#[test]
fn oci_export_is_accepted_by_skopeo_and_umoci() {
    let f = fixture();
    let img = f.commit();
    let out = tempfile::tempdir().unwrap();
    let tar_path = out.path().join("out.tar");
    let names = vec!["app:1.0".to_string()];
    let e = export_oci(&f.store, &img.manifest_digest, &tar_path, true, &names).unwrap();
    assert_eq!(e.config_digest, img.config_digest, "image id unchanged");
    assert!(tar_path.is_file());
    let layout = out.path().join("layout");
    export_oci(&f.store, &img.manifest_digest, &layout, false, &names).unwrap();
    let index = layout_index(&layout);
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "1.0"
    );
    let m =
        ImageManifest::parse(&layout_blob(&layout, &first_manifest(&index)), "exported").unwrap();
    assert!(m.layers.iter().all(|l| l.media_type == OCI_LAYER_GZIP));
    // Every blob matches its name.
    for entry in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let bytes = fs::read(entry.path()).unwrap();
        assert_eq!(
            Digest::of(&bytes).hex(),
            entry.file_name().to_string_lossy()
        );
    }
    // The gzipped layer unpacks to the same diff_id.
    let c = config::parse(&layout_blob(&layout, &e.config_digest), "c").unwrap();
    let blobs = layout.join("blobs/sha256");
    assert_unpacks_to(&blobs.join(m.layers[0].digest.hex()), &c.diff_ids[0]);

    if tool("skopeo") {
        let v = skopeo_inspect(format!("oci-archive:{}", tar_path.display()));
        assert_eq!(
            v["Layers"].as_array().unwrap().len(),
            3,
            "two layers and the empty one"
        );
        skopeo_inspect(format!("oci:{}:1.0", layout.display()));
    }
    if tool("umoci") {
        let bundle = out.path().join("bundle");
        let mut cmd = Command::new("umoci");
        cmd.arg("unpack");
        if !is_root() {
            cmd.arg("--rootless");
        }
        cmd.arg("--image")
            .arg(format!("{}:1.0", layout.display()))
            .arg(&bundle);
        run_ok(&mut cmd, "umoci");
        let rootfs = bundle.join("rootfs");
        assert_eq!(fs::read(rootfs.join("etc/new")).unwrap(), b"new");
        assert!(rootfs.join("bin/hello").is_file());
        if is_root() {
            assert!(
                !rootfs.join("etc/old").exists(),
                "whiteout applied by umoci"
            );
        }
    }
}

#[test]
fn zstd_oci_export_unpacks_to_the_same_diff_ids() {
    let f = fixture();
    let img = f.commit();
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("zstd");
    let e = rbuild_oci::export::export_oci_compressed(
        &f.store,
        &img.manifest_digest,
        &layout,
        false,
        &[],
        rbuild_oci::compress::Compression::Zstd,
    )
    .unwrap();
    let m = ImageManifest::parse(&layout_blob(&layout, &e.manifest_digest), "m").unwrap();
    let c = config::parse(&layout_blob(&layout, &e.config_digest), "c").unwrap();
    for (layer, diff_id) in m.layers.iter().zip(&c.diff_ids) {
        assert_eq!(
            layer.media_type,
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        assert_unpacks_to(
            &layout.join("blobs/sha256").join(layer.digest.hex()),
            diff_id,
        );
    }
}

#[test]
fn docker_archive_is_accepted_by_skopeo() {
    let f = fixture();
    let img = f.commit();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("docker.tar");
    export_docker(
        &f.store,
        &img.manifest_digest,
        &path,
        &["app:1.0".to_string()],
    )
    .unwrap();
    let mut manifest = String::new();
    for e in testutil::list(fs::File::open(&path).unwrap()).unwrap() {
        if e.name == b"manifest.json" {
            manifest = String::from_utf8(e.data).unwrap();
        }
    }
    let v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(v[0]["RepoTags"][0], "app:1.0");
    assert_eq!(
        v[0]["Layers"].as_array().unwrap().len(),
        3,
        "two layers and the empty one"
    );
    if tool("skopeo") {
        skopeo_inspect(format!("docker-archive:{}", path.display()));
    }
}

#[test]
fn rootfs_exports_apply_whiteouts() {
    let f = fixture();
    let dest = tempfile::tempdir().unwrap();
    let root = dest.path().join("root");
    export_local(&f.store, &f.layers, &root, &privileges()).unwrap();
    assert_eq!(fs::read(root.join("etc/new")).unwrap(), b"new");
    assert!(root.join("bin/hello").is_file());
    assert_eq!(root.join("etc/old").exists(), !is_root());
    let mut tar_bytes = Vec::new();
    export_rootfs_tar(&f.store, &f.layers, &mut tar_bytes).unwrap();
    let names = testutil::names(&tar_bytes[..]).unwrap();
    assert!(names.contains(&"bin/hello".to_string()));
    assert!(!names.iter().any(|n| n.contains(".wh.")));
}

/// Puts the busybox OCI layout into the store as a registry pull would: blobs as they are,
/// the layer unpacked to a snapshot named by its diff_id, layer info, and a tag.
fn import_busybox(store: &Store) -> Option<(Digest, Vec<SnapshotId>, ImageConfig)> {
    let layout = busybox_layout()?;
    let md = first_manifest(&layout_index(&layout));
    let blob = |d: &Digest| layout_blob(&layout, d);
    let m = ImageManifest::parse(&blob(&md), "busybox").unwrap();
    store.blobs().put(&blob(&md)).unwrap();
    store.blobs().put(&blob(&m.config.digest)).unwrap();
    let c = config::parse(&blob(&m.config.digest), "busybox config").unwrap();
    let mut snaps = Vec::new();
    for (layer, diff_id) in m.layers.iter().zip(&c.diff_ids) {
        store.blobs().put(&blob(&layer.digest)).unwrap();
        let p = store.snapshots().prepare().unwrap();
        let got = unpack(&blob(&layer.digest)[..], &p.upper, &privileges()).unwrap();
        assert_eq!(got.diff_id, *diff_id, "unpack computes the diff_id");
        let id = SnapshotId(*diff_id);
        store.snapshots().commit(p, &id).unwrap();
        store
            .layer_info()
            .set(
                &id,
                &LayerInfo {
                    diff_id: got.diff_id,
                    size: got.size,
                },
            )
            .unwrap();
        // What `source.rs` records when it pulls a layer.
        store
            .layer_blobs()
            .set(diff_id, &layer.layer_blob())
            .unwrap();
        snaps.push(id);
    }
    tag_image(store, "busybox:latest", &md).unwrap();
    Some((md, snaps, c.image))
}

#[test]
fn base_layers_are_reused_not_recompressed() {
    if !require_root("to unpack busybox (device nodes, owners)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let Some((base_md, mut layers, mut cfg)) = import_busybox(&store) else {
        return;
    };
    let base = ImageManifest::parse(&store.blobs().read(&base_md).unwrap(), "base").unwrap();
    layers.push(snapshot(&store, "mine", |d| {
        fs::write(d.join("hello.txt"), b"hi").unwrap()
    }));
    cfg.history.push(hist("COPY hello.txt /", false));
    // Pulled images need not be tagged: the base blob is found by its layer_blobs record.
    assert!(store
        .tags()
        .remove("docker.io/library/busybox:latest")
        .unwrap());
    let img = commit_image(&store, &layers, &cfg, Some(1_700_000_000)).unwrap();
    let m = stored_manifest(&store, &img.manifest_digest);
    assert_eq!(m.layers.len(), 2);
    assert_eq!(
        m.layers[0].digest, base.layers[0].digest,
        "base blob referenced as pulled"
    );
    assert_eq!(m.layers[0].media_type, OCI_LAYER_GZIP);
    assert_eq!(m.layers[1].media_type, OCI_LAYER);

    let out = tempfile::tempdir().unwrap();
    let tar_path = out.path().join("img.tar");
    export_oci(
        &store,
        &img.manifest_digest,
        &tar_path,
        true,
        &["app:2".to_string()],
    )
    .unwrap();
    let names = testutil::names(fs::File::open(&tar_path).unwrap()).unwrap();
    assert!(names.contains(&format!("blobs/sha256/{}", base.layers[0].digest.hex())));
    let root = out.path().join("root");
    export_local(&store, &layers, &root, &privileges()).unwrap();
    assert!(root.join("bin/busybox").is_file() || root.join("bin/sh").exists());
    assert_eq!(fs::read(root.join("hello.txt")).unwrap(), b"hi");
    if tool("skopeo") {
        skopeo_inspect(format!("oci-archive:{}", tar_path.display()));
    }
}

#[test]
fn exported_archives_import_back() {
    let f = fixture();
    let img = f.commit();
    let out = tempfile::tempdir().unwrap();
    let names = vec!["app:1.0".to_string()];
    let oci_tar = out.path().join("oci.tar");
    export_oci(&f.store, &img.manifest_digest, &oci_tar, true, &names).unwrap();
    let docker_tar = out.path().join("docker.tar");
    export_docker(&f.store, &img.manifest_digest, &docker_tar, &names).unwrap();
    for archive in [&oci_tar, &docker_tar] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let imported = rbuild_oci::images::import_archive(&store, archive).unwrap();
        assert_eq!(imported.len(), 1, "{}", archive.display());
        assert_eq!(
            imported[0].names,
            vec!["docker.io/library/app:1.0".to_string()]
        );
        let loaded = load_image(&store, "app:1.0").unwrap();
        assert_eq!(
            loaded.id(),
            img.config_digest,
            "image id survives {}",
            archive.display()
        );
        for l in &loaded.manifest.layers {
            assert!(store.blobs().has(&l.digest));
        }
    }
    let bad = out.path().join("bad.tar");
    fs::write(&bad, [0u8; 1024]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    assert!(rbuild_oci::images::import_archive(&store, &bad).is_err());
}

#[test]
fn distribution_form_with_docker_media_types_and_levels() {
    use rbuild_oci::compress::{CompressSettings, Compression};
    use rbuild_oci::images::{distribution_image, DistOptions};
    let f = fixture();
    let img = f.commit();
    let docker = DistOptions {
        compress: CompressSettings {
            compression: Compression::Gzip,
            level: Some(9),
            threads: 2,
        },
        oci_media_types: false,
    };
    let d = distribution_image(&f.store, &img.manifest_digest, &docker).unwrap();
    assert_eq!(
        d.media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        d.config_digest, img.config_digest,
        "the image id never changes"
    );
    assert_eq!(
        d.manifest.config.media_type,
        "application/vnd.docker.container.image.v1+json"
    );
    let c = config::parse(&f.store.blobs().read(&img.config_digest).unwrap(), "c").unwrap();
    for (layer, diff_id) in d.manifest.layers.iter().zip(&c.diff_ids) {
        assert_eq!(
            layer.media_type,
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        assert_unpacks_to(&f.store.blobs().path(&layer.digest), diff_id);
    }
    // Deterministic whatever the thread count; zstd forces OCI media types.
    let one_thread = DistOptions {
        compress: CompressSettings {
            threads: 1,
            ..docker.compress
        },
        ..docker
    };
    let again = distribution_image(&f.store, &img.manifest_digest, &one_thread).unwrap();
    assert_eq!(again.manifest_digest, d.manifest_digest);
    let zstd = DistOptions {
        compress: CompressSettings::new(Compression::Zstd),
        oci_media_types: false,
    };
    let z = distribution_image(&f.store, &img.manifest_digest, &zstd).unwrap();
    assert_eq!(z.media_type, "application/vnd.oci.image.manifest.v1+json");

    // Several images in one docker archive and one OCI layout.
    let out = tempfile::tempdir().unwrap();
    let both = [
        (img.manifest_digest, vec!["a:1".to_string()]),
        (img.manifest_digest, vec!["b:2".to_string()]),
    ];
    let tar_path = out.path().join("both.tar");
    rbuild_oci::export::export_docker_many(&f.store, &both, &tar_path, Some(&docker)).unwrap();
    let layout = out.path().join("both");
    let written = rbuild_oci::export::export_oci_with(
        &f.store,
        &both,
        &layout,
        false,
        &DistOptions::default(),
    )
    .unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(
        layout_index(&layout)["manifests"].as_array().unwrap().len(),
        2
    );
    let fresh = tempfile::tempdir().unwrap();
    let store = Store::open(fresh.path()).unwrap();
    for archive in [&tar_path, &layout] {
        let loaded = rbuild_oci::images::import_archive(&store, archive).unwrap();
        let names: Vec<_> = loaded.iter().flat_map(|l| l.names.clone()).collect();
        assert_eq!(
            names,
            ["docker.io/library/a:1", "docker.io/library/b:2"],
            "{}",
            archive.display()
        );
        assert_eq!(load_image(&store, "b:2").unwrap().id(), img.config_digest);
    }
}
