//! Base images built offline from Debian packages, as OCI image layouts: `busybox:latest`
//! from busybox-static (what `../shared/bench/setup.sh` builds for the benchmarks, without
//! chroot or umoci). The layer is written by GNU tar and compressed by gzip, not by rbuild, so
//! the tests that read it read a layer another tool made.
//!
//! A layout is built once per machine and busybox binary into the fixture cache
//! ([`fixtures_dir`]), under a name that carries the binary's digest; later tests and test
//! processes reuse it. Building takes about a second.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use rbuild_types::{Digest, Platform};
use serde_json::json;

use crate::skip::{require_busybox, BUSYBOX};

/// Bump when the image changes: the cache key includes it.
const BUSYBOX_IMAGE_VERSION: u32 = 1;

/// Every entry's mtime in the layer, and the config's `created` (2024-01-01T00:00:00Z).
const EPOCH: u64 = 1_704_067_200;
const CREATED: &str = "2024-01-01T00:00:00Z";

/// The media types of what we write.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Where built fixtures are kept: `$RBUILD_TEST_FIXTURES`, or `rbuild-test-fixtures-<uid>` in
/// the temporary directory (one per user: another user's cache is not ours to write).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("RBUILD_TEST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let uid = nix::unistd::getuid();
            std::env::temp_dir().join(format!("rbuild-test-fixtures-{uid}"))
        })
}

/// The `busybox:latest` OCI layout (tag `latest`): one gzip layer with busybox-static, its
/// applets as absolute symlinks to `/bin/busybox` (what `busybox --install -s` makes), root
/// and nobody in `/etc/passwd`; `PATH` set and `CMD ["sh"]`. `None` after a skip when
/// busybox-static is not installed.
pub fn busybox_layout() -> Option<PathBuf> {
    if !require_busybox() {
        return None;
    }
    // One build at a time in this process; other processes race harmlessly (see `cached`).
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let binary = std::fs::read(BUSYBOX).expect("read busybox");
    let key = format!(
        "busybox-v{BUSYBOX_IMAGE_VERSION}-{}",
        &Digest::of(&binary).hex()[..16]
    );
    Some(cached(&key, |dir| build_busybox(dir, &binary)))
}

/// `fixtures_dir()/key`, built by `build` into a fresh directory that is then renamed into
/// place (so a reader never sees a half-built fixture; of two concurrent builders one wins).
fn cached(key: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let root = fixtures_dir();
    let done = root.join(key);
    if done.join("index.json").is_file() {
        return done;
    }
    std::fs::create_dir_all(&root).expect("create the fixture cache");
    let staging = tempfile::Builder::new()
        .prefix(&format!("{key}.building-"))
        .tempdir_in(&root)
        .expect("staging dir");
    build(staging.path());
    // Fails when another process finished first: then its copy is as good as ours.
    let _ = std::fs::rename(staging.path(), &done);
    assert!(
        done.join("index.json").is_file(),
        "fixture {} was not built",
        done.display()
    );
    done
}

fn build_busybox(layout: &Path, binary: &[u8]) {
    let work = tempfile::tempdir().expect("tempdir");
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs, binary);
    let tar = work.path().join("layer.tar");
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--format=gnu",
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            &format!("--mtime=@{EPOCH}"),
            "-C",
        ])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    let gz = work.path().join("layer.tar.gz");
    let out = std::fs::File::create(&gz).expect("create layer.tar.gz");
    run(Command::new("gzip")
        .args(["-n", "-6", "-c"])
        .arg(&tar)
        .stdout(out));
    let diff_id = Digest::of(&std::fs::read(&tar).expect("read layer.tar"));
    let history = "busybox-static rootfs (rbuild test fixture)";
    write_layout(
        layout,
        "latest",
        &[(std::fs::read(&gz).expect("read layer.tar.gz"), diff_id)],
        &json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        }),
        history,
    );
}

/// The busybox root filesystem, as `../shared/bench/setup.sh` lays it out.
fn busybox_rootfs(r: &Path, binary: &[u8]) {
    let dirs = [
        "",
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "etc",
        "tmp",
        "root",
        "proc",
        "sys",
        "dev",
        "home",
        "var",
        "var/spool",
        "var/spool/mail",
    ];
    for d in dirs {
        let p = r.join(d);
        std::fs::create_dir_all(&p).expect("mkdir");
        let mode = match d {
            "tmp" => 0o1777,
            "root" => 0o700,
            _ => 0o755,
        };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let bin = r.join("bin/busybox");
    std::fs::write(&bin, binary).expect("write busybox");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let list = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .expect("busybox --list-full");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = r.join(applet.trim_start_matches('/'));
        if applet.is_empty() || link.symlink_metadata().is_ok() {
            continue;
        }
        std::fs::create_dir_all(link.parent().expect("applet dir")).expect("mkdir");
        symlink("/bin/busybox", &link).expect("applet symlink");
    }
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
             nobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"),
        ("etc/nsswitch.conf", "hosts: files dns\n"),
    ];
    for (path, text) in files {
        std::fs::write(r.join(path), text).expect("write /etc file");
    }
}

/// Writes an OCI image layout with one image (tag `tag`): `layers` are (gzip blob, diff_id),
/// bottom first; `config` is the image config's `config` object; one history entry a layer.
pub fn write_layout(
    layout: &Path,
    tag: &str,
    layers: &[(Vec<u8>, Digest)],
    config: &serde_json::Value,
    created_by: &str,
) -> Digest {
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir blobs");
    let put = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).expect("write blob");
        json!({"digest": d.to_string(), "size": bytes.len()})
    };
    let platform = Platform::host();
    let mut image = json!({
        "created": CREATED,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": config,
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|(_, d)| d.to_string()).collect::<Vec<_>>(),
        },
        "history": layers.iter().map(|_| json!({"created": CREATED, "created_by": created_by}))
            .collect::<Vec<_>>(),
    });
    if let Some(v) = &platform.variant {
        image["variant"] = json!(v);
    }
    let mut config_desc = put(&serde_json::to_vec(&image).expect("config json"));
    config_desc["mediaType"] = json!(OCI_CONFIG);
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|(blob, _)| {
            let mut d = put(blob);
            d["mediaType"] = json!(OCI_LAYER_GZIP);
            d
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": layer_descs,
    }))
    .expect("manifest json");
    let mut manifest_desc = put(&manifest);
    manifest_desc["mediaType"] = json!(OCI_MANIFEST);
    manifest_desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [manifest_desc],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).expect("index json"),
    )
    .expect("write index.json");
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write oci-layout");
    Digest::of(&manifest)
}

/// The image of an OCI layout's first (only) manifest: its digest and bytes, read back.
pub struct LayoutImage {
    pub manifest_digest: Digest,
    pub manifest: serde_json::Value,
    pub manifest_bytes: Vec<u8>,
}

impl LayoutImage {
    /// Reads the first manifest of the layout at `layout`.
    pub fn read(layout: &Path) -> LayoutImage {
        let index: serde_json::Value = serde_json::from_slice(
            &std::fs::read(layout.join("index.json")).expect("read index.json"),
        )
        .expect("parse index.json");
        let manifest_digest: Digest = index["manifests"][0]["digest"]
            .as_str()
            .expect("manifest digest")
            .parse()
            .expect("a digest");
        let manifest_bytes = blob(layout, &manifest_digest);
        let manifest = serde_json::from_slice(&manifest_bytes).expect("parse manifest");
        LayoutImage {
            manifest_digest,
            manifest,
            manifest_bytes,
        }
    }

    /// The config and layer digests, config first.
    pub fn blobs(&self) -> Vec<Digest> {
        let manifest = &self.manifest;
        std::iter::once(&manifest["config"])
            .chain(manifest["layers"].as_array().into_iter().flatten())
            .map(|d| {
                d["digest"]
                    .as_str()
                    .expect("descriptor digest")
                    .parse()
                    .expect("a digest")
            })
            .collect()
    }
}

/// The bytes of blob `digest` of the layout at `layout`.
pub fn blob(layout: &Path, digest: &Digest) -> Vec<u8> {
    let path = layout.join("blobs/sha256").join(digest.hex());
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?}: {status}");
}
