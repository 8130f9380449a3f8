//! Base images built offline from Debian packages, as OCI image layouts: `busybox:latest`
//! from busybox-static (what `../shared/bench/setup.sh` builds for the benchmarks, without
//! chroot or umoci). The layer is written by GNU tar and compressed by gzip, not by rbuild, so
//! the tests that read it read a layer another tool made.
//!
//! Other architectures' busybox ([`busybox_layout_for`], [`busybox_arm64_layout`]) come from
//! that architecture's `busybox-static` package file, which `.ci/run` downloads (see
//! [`crate::debs`]); [`busybox_multi_layout`] is an image index of the host's and arm64's.
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

/// Bump when the multi-platform index changes.
const BUSYBOX_MULTI_VERSION: u32 = 1;

/// The architectures of [`busybox_multi_layout`]'s index, in its order.
pub const MULTI_ARCHES: [&str; 2] = ["amd64", "arm64"];

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
    let binary = std::fs::read(BUSYBOX).expect("read busybox");
    Some(busybox_layout_of(&binary, &Platform::host(), ""))
}

/// The `busybox:latest` OCI layout for `linux/<arch>` (an OCI architecture name: `amd64`,
/// `arm64`, ...): the host's is [`busybox_layout`]; another architecture's is made from its
/// `busybox-static` package file ([`crate::debs::busybox_binary_for`]), with the applet links of
/// the host's busybox-static (Debian builds every architecture's with one configuration).
/// Its config says `architecture: <arch>` (and `variant: v8` for arm64), `os: linux`. `None`
/// after a loud skip when the package file or busybox-static is missing.
pub fn busybox_layout_for(arch: &str) -> Option<PathBuf> {
    let platform = platform_of(arch);
    if platform == Platform::host() {
        return busybox_layout();
    }
    if !require_busybox() {
        return None;
    }
    let binary = std::fs::read(crate::debs::busybox_binary_for(arch)?).expect("read busybox");
    Some(busybox_layout_of(&binary, &platform, &format!("{arch}-")))
}

/// [`busybox_layout_for`]`("arm64")`: busybox for linux/arm64/v8 from `busybox-static:arm64`.
pub fn busybox_arm64_layout() -> Option<PathBuf> {
    busybox_layout_for("arm64")
}

/// `linux/<arch>`, with the variant an image of that architecture normally names (arm64's
/// `v8`; the host's platform is [`Platform::host`] as it is).
pub fn platform_of(arch: &str) -> Platform {
    let host = Platform::host();
    if arch == host.architecture {
        return host;
    }
    Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: (arch == "arm64").then(|| "v8".to_string()),
    }
}

/// The busybox layout of `binary` for `platform`, built once; `prefix` keeps other
/// architectures' cache entries apart (empty for the host's, whose key predates it).
fn busybox_layout_of(binary: &[u8], platform: &Platform, prefix: &str) -> PathBuf {
    // One build at a time in this process; other processes race harmlessly (see `cached`).
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let key = format!(
        "busybox-{prefix}v{BUSYBOX_IMAGE_VERSION}-{}",
        &Digest::of(binary).hex()[..16]
    );
    cached(&key, "index.json", |dir| {
        build_busybox(dir, binary, platform)
    })
}

/// An OCI layout whose tag `latest` is an image index of busybox for every [`MULTI_ARCHES`]
/// platform (the [`busybox_layout_for`] images, each manifest with its platform), as a
/// multi-platform `busybox` is on Docker Hub. [`crate::Registry::push_layout`] pushes it whole
/// (see [`crate::Registry::with_busybox_multi`]). `None` after a loud skip when an
/// architecture's busybox is missing.
pub fn busybox_multi_layout() -> Option<PathBuf> {
    let mut images = Vec::new();
    for arch in MULTI_ARCHES {
        let layout = busybox_layout_for(arch)?;
        images.push((platform_of(arch), layout));
    }
    let key = images
        .iter()
        .map(|(_, l)| LayoutImage::read(l).manifest_digest.hex()[..12].to_string())
        .collect::<Vec<_>>()
        .join("-");
    let key = format!("busybox-multi-v{BUSYBOX_MULTI_VERSION}-{key}");
    Some(cached(&key, "index.json", |dir| {
        write_index_layout(dir, "latest", &images);
    }))
}

/// Writes an OCI layout whose tag `tag` is an image index of the first image of each layout
/// of `images`, described with its platform; every blob is copied. Returns the index digest.
pub fn write_index_layout(layout: &Path, tag: &str, images: &[(Platform, PathBuf)]) -> Digest {
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir blobs");
    let mut manifests = Vec::new();
    for (platform, from) in images {
        let image = LayoutImage::read(from);
        for d in image.blobs() {
            std::fs::write(blobs.join(d.hex()), blob(from, &d)).expect("copy blob");
        }
        std::fs::write(
            blobs.join(image.manifest_digest.hex()),
            &image.manifest_bytes,
        )
        .expect("copy manifest");
        let mut p = json!({"architecture": platform.architecture, "os": platform.os});
        if let Some(v) = &platform.variant {
            p["variant"] = json!(v);
        }
        manifests.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": image.manifest_digest.to_string(),
            "size": image.manifest_bytes.len(),
            "platform": p,
        }));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    }))
    .expect("index json");
    let digest = Digest::of(&index);
    std::fs::write(blobs.join(digest.hex()), &index).expect("write index blob");
    write_top_index(
        layout,
        json!({
            "mediaType": OCI_INDEX,
            "digest": digest.to_string(),
            "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }),
    );
    digest
}

/// `index.json` (with the one descriptor `desc`) and `oci-layout` of a layout.
fn write_top_index(layout: &Path, desc: serde_json::Value) {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [desc],
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
}

/// `fixtures_dir()/key`, built by `build` into a fresh directory that is then renamed into
/// place (so a reader never sees a half-built fixture; of two concurrent builders one wins).
/// `marker` is a file the finished fixture has.
pub(crate) fn cached(key: &str, marker: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let root = fixtures_dir();
    let done = root.join(key);
    if done.join(marker).exists() {
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
        done.join(marker).exists(),
        "fixture {} was not built",
        done.display()
    );
    done
}

fn build_busybox(layout: &Path, binary: &[u8], platform: &Platform) {
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
    write_layout_for(
        layout,
        "latest",
        &[(std::fs::read(&gz).expect("read layer.tar.gz"), diff_id)],
        &json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        }),
        history,
        platform,
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

/// Writes an OCI image layout with one image (tag `tag`) for the host's platform: `layers` are
/// (gzip blob, diff_id), bottom first; `config` is the image config's `config` object; one
/// history entry a layer.
pub fn write_layout(
    layout: &Path,
    tag: &str,
    layers: &[(Vec<u8>, Digest)],
    config: &serde_json::Value,
    created_by: &str,
) -> Digest {
    write_layout_for(layout, tag, layers, config, created_by, &Platform::host())
}

/// [`write_layout`] for `platform` (the config's `architecture`, `os` and `variant`).
pub fn write_layout_for(
    layout: &Path,
    tag: &str,
    layers: &[(Vec<u8>, Digest)],
    config: &serde_json::Value,
    created_by: &str,
    platform: &Platform,
) -> Digest {
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir blobs");
    let put = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).expect("write blob");
        json!({"digest": d.to_string(), "size": bytes.len()})
    };
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
    write_top_index(layout, manifest_desc);
    Digest::of(&manifest)
}

/// The image (or image index) of an OCI layout's first (only) manifest: its digest and
/// bytes, read back.
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

    /// The config and layer digests, config first (none for an index).
    pub fn blobs(&self) -> Vec<Digest> {
        manifest_blobs(&self.manifest)
    }

    /// Whether this is an image index (of [`busybox_multi_layout`]).
    pub fn is_index(&self) -> bool {
        is_index(&self.manifest)
    }

    /// An index's manifests: (platform `os/arch[/variant]`, digest), in its order.
    pub fn children(&self) -> Vec<(String, Digest)> {
        index_children(&self.manifest)
    }
}

/// The config and layer digests of an image manifest, config first (none for an index).
pub fn manifest_blobs(manifest: &serde_json::Value) -> Vec<Digest> {
    if is_index(manifest) {
        return Vec::new();
    }
    std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().into_iter().flatten())
        .map(descriptor_digest)
        .collect()
}

/// Whether `manifest` is an image index (OCI or Docker manifest list).
pub fn is_index(manifest: &serde_json::Value) -> bool {
    manifest["manifests"].is_array()
}

/// The manifests of an index: (platform `os/arch[/variant]`, digest).
pub fn index_children(index: &serde_json::Value) -> Vec<(String, Digest)> {
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let p = &d["platform"];
            let mut name = format!(
                "{}/{}",
                p["os"].as_str().unwrap_or("?"),
                p["architecture"].as_str().unwrap_or("?")
            );
            if let Some(v) = p["variant"].as_str() {
                name = format!("{name}/{v}");
            }
            (name, descriptor_digest(d))
        })
        .collect()
}

fn descriptor_digest(d: &serde_json::Value) -> Digest {
    d["digest"]
        .as_str()
        .expect("descriptor digest")
        .parse()
        .expect("a digest")
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
