//! Importing image archives into the local store (`rbuild load -i FILE`): OCI image layouts
//! (directory or tar) and docker-archive tars (`docker save`), plain or compressed.
//!
//! Invariant: every blob is verified against its digest on the way into the store; nothing is
//! tagged until all blobs of the image are stored.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use rbuild_cache::Store;
use rbuild_types::{Digest, ImageRef, Platform};
use serde::Deserialize;

use super::commit::put_manifest;
use super::tag_image;
use rbuild_archive::{extract, sanitize, sniff, DirSink, ExtractError, NamePolicy};

use crate::compress::Compression;
use crate::layer::archive_error;
use crate::manifest::{
    oci_layer_type, Descriptor, ImageIndex, ImageManifest, CONTAINERD_IMAGE_NAME, OCI_CONFIG,
    OCI_INDEX, REF_NAME,
};
use crate::{config, OciError};

/// One image an import stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedImage {
    pub manifest_digest: Digest,
    /// The tags it was given (normalised); empty when the archive names none.
    pub names: Vec<String>,
}

const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Imports the archive or layout at `path` and tags the images with the names it carries.
pub fn import_archive(store: &Store, path: &Path) -> Result<Vec<ImportedImage>, OciError> {
    let meta = fs::metadata(path).map_err(OciError::io("stat", path))?;
    if meta.is_dir() {
        return import_dir(store, path, path);
    }
    let file = File::open(path).map_err(OciError::io("open", path))?;
    import_archive_from(store, BufReader::new(file), path)
}

/// Imports an archive (tar, maybe compressed) read from `reader` (`rbuild load` from
/// standard input); `name` names it in errors.
pub fn import_archive_from(
    store: &Store,
    reader: impl Read,
    name: &Path,
) -> Result<Vec<ImportedImage>, OciError> {
    let tmp = tempfile::tempdir().map_err(OciError::io("create temp directory for", name))?;
    let plain = rbuild_archive::decompress(reader).map_err(OciError::io("read", name))?;
    let mut sink = DirSink::new(tmp.path(), false).map_err(dir_error)?;
    extract(plain, NamePolicy::Strict, &mut sink).map_err(|e| match e {
        ExtractError::Archive(e) => archive_error(e),
        ExtractError::Sink(e) => dir_error(e),
    })?;
    import_dir(store, tmp.path(), name)
}

/// An image archive that cannot be unpacked into its temporary directory.
fn dir_error(e: rbuild_archive::DirSinkError) -> OciError {
    match e {
        rbuild_archive::DirSinkError::Escapes { entry, detail } => OciError::Escape {
            entry: entry.lossy().into_owned(),
            reason: detail,
        },
        rbuild_archive::DirSinkError::Io(rbuild_archive::PathError { op, path, source }) => {
            OciError::Io { op, path, source }
        }
    }
}

/// Imports an unpacked OCI layout or docker-archive in `dir`; `name` is what the user gave.
fn import_dir(store: &Store, dir: &Path, name: &Path) -> Result<Vec<ImportedImage>, OciError> {
    if dir.join("index.json").is_file() {
        import_oci_layout(store, dir)
    } else if dir.join("manifest.json").is_file() {
        import_docker_archive(store, dir)
    } else {
        Err(OciError::Invalid {
            what: "image archive (no index.json or manifest.json)",
            context: "load".into(),
            value: name.display().to_string(),
        })
    }
}

pub(super) fn read(path: &Path) -> Result<Vec<u8>, OciError> {
    fs::read(path).map_err(OciError::io("read", path))
}

/// Reads and parses the OCI index (or Docker manifest list) at `path`.
fn read_index(path: &Path) -> Result<ImageIndex, OciError> {
    serde_json::from_slice(&read(path)?).map_err(|source| OciError::Json {
        what: "OCI index",
        context: path.display().to_string(),
        source,
    })
}

/// Copies `src` into the store, verifying it has digest `expected` if given.
fn store_file(
    store: &Store,
    src: &Path,
    expected: Option<&Digest>,
) -> Result<(Digest, u64), OciError> {
    if let Some(d) = expected {
        if store.blobs().has(d) {
            let size = fs::metadata(src).map_err(OciError::io("stat", src))?.len();
            return Ok((*d, size));
        }
    }
    let mut file = File::open(src).map_err(OciError::io("open", src))?;
    let mut writer = store
        .blobs()
        .writer()
        .map_err(OciError::store("open blob writer"))?;
    std::io::copy(&mut file, &mut writer).map_err(OciError::io("copy into the store", src))?;
    writer
        .commit(expected)
        .map_err(OciError::store(format!("store blob {}", src.display())))
}

pub(crate) fn blob_file(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

/// The `index.json` of the OCI layout `dir`.
pub(super) fn read_layout_index(dir: &Path) -> Result<ImageIndex, OciError> {
    read_index(&dir.join("index.json"))
}

fn import_oci_layout(store: &Store, dir: &Path) -> Result<Vec<ImportedImage>, OciError> {
    let index = read_layout_index(dir)?;
    let mut out = Vec::new();
    for desc in &index.manifests {
        let desc = pick_platform(dir, desc, &Platform::host())?;
        let manifest_digest = import_oci_image(store, dir, &desc)?;
        let mut names = Vec::new();
        let ann = desc.annotations.clone().unwrap_or_default();
        let full = ann.get(CONTAINERD_IMAGE_NAME).or_else(|| {
            ann.get(REF_NAME)
                .filter(|r| r.contains(':') || r.contains('/'))
        });
        if let Some(name) = full.and_then(|n| ImageRef::parse(n).ok()) {
            tag_image(store, &name.to_string(), &manifest_digest)?;
            names.push(name.to_string());
        }
        out.push(ImportedImage {
            manifest_digest,
            names,
        });
    }
    Ok(out)
}

/// For a nested index, the entry for `platform`'s OS and architecture (else the first);
/// otherwise `desc`.
pub(super) fn pick_platform(
    dir: &Path,
    desc: &Descriptor,
    platform: &Platform,
) -> Result<Descriptor, OciError> {
    if desc.media_type != OCI_INDEX && desc.media_type != DOCKER_LIST {
        return Ok(desc.clone());
    }
    let nested = read_index(&blob_file(dir, &desc.digest))?;
    let chosen = nested
        .manifests
        .iter()
        .find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == platform.os && p.architecture == platform.architecture)
        })
        .or_else(|| nested.manifests.first())
        .ok_or_else(|| OciError::Invalid {
            what: "empty image index",
            context: "load".into(),
            value: desc.digest.to_string(),
        })?;
    let mut chosen = chosen.clone();
    chosen.annotations = desc.annotations.clone().or(chosen.annotations);
    Ok(chosen)
}

/// Copies the image `desc` (a manifest) of the layout `dir` into the store, every blob
/// verified; returns its manifest digest. Nothing is tagged.
pub(super) fn import_oci_image(
    store: &Store,
    dir: &Path,
    desc: &Descriptor,
) -> Result<Digest, OciError> {
    let manifest_path = blob_file(dir, &desc.digest);
    let bytes = read(&manifest_path)?;
    let manifest = ImageManifest::parse(&bytes, &desc.digest.to_string())?;
    store_file(
        store,
        &blob_file(dir, &manifest.config.digest),
        Some(&manifest.config.digest),
    )?;
    for layer in &manifest.layers {
        store_file(store, &blob_file(dir, &layer.digest), Some(&layer.digest))?;
    }
    let config_path = blob_file(dir, &manifest.config.digest);
    let parsed = config::parse(&read(&config_path)?, &manifest.config.digest.to_string())?;
    if parsed.diff_ids.len() != manifest.layers.len() {
        return Err(OciError::LayerCountMismatch {
            manifest: desc.digest,
            layers: manifest.layers.len(),
            diff_ids: parsed.diff_ids.len(),
        });
    }
    record_layer_blobs(store, &manifest.layers, &parsed.diff_ids)?;
    store_file(store, &manifest_path, Some(&desc.digest)).map(|(d, _)| d)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Resolves a path named inside the archive, refusing names that leave it.
fn inside(dir: &Path, name: &str) -> Result<PathBuf, OciError> {
    let rel = sanitize(name.as_bytes(), NamePolicy::Strict).map_err(|reason| OciError::Escape {
        entry: name.to_string(),
        reason: reason.reason(),
    })?;
    Ok(dir.join(rel.as_path()))
}

fn import_docker_archive(store: &Store, dir: &Path) -> Result<Vec<ImportedImage>, OciError> {
    let manifest_path = dir.join("manifest.json");
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&read(&manifest_path)?).map_err(|source| OciError::Json {
            what: "docker-archive manifest.json",
            context: manifest_path.display().to_string(),
            source,
        })?;
    let mut out = Vec::new();
    for entry in entries {
        let config_path = inside(dir, &entry.config)?;
        let config_bytes = read(&config_path)?;
        let parsed = config::parse(&config_bytes, &entry.config)?;
        if parsed.diff_ids.len() != entry.layers.len() {
            return Err(OciError::Invalid {
                what: "layer count (config diff_ids vs manifest.json Layers)",
                context: entry.config.clone(),
                value: format!("{} vs {}", parsed.diff_ids.len(), entry.layers.len()),
            });
        }
        let config_digest = store
            .blobs()
            .put(&config_bytes)
            .map_err(OciError::store("store config"))?;
        let mut layers = Vec::new();
        for (name, diff_id) in entry.layers.iter().zip(&parsed.diff_ids) {
            let path = inside(dir, name)?;
            let mut head = [0u8; 6];
            let n = File::open(&path)
                .and_then(|mut f| f.read(&mut head))
                .map_err(OciError::io("read", &path))?;
            let format = sniff(&head[..n]);
            let compression = Compression::of(format).ok_or_else(|| OciError::Invalid {
                what: "layer compression (layers are plain, gzip or zstd)",
                context: name.clone(),
                value: format.name().to_string(),
            })?;
            let expected = (compression == Compression::None).then_some(diff_id);
            let (digest, size) = store_file(store, &path, expected)?;
            layers.push(Descriptor::new(oci_layer_type(compression), digest, size));
        }
        record_layer_blobs(store, &layers, &parsed.diff_ids)?;
        let config = Descriptor::new(OCI_CONFIG, config_digest, config_bytes.len() as u64);
        let manifest_digest = put_manifest(store, config, layers, None, "store manifest")?;
        let mut names = Vec::new();
        for tag in entry.repo_tags.unwrap_or_default() {
            tag_image(store, &tag, &manifest_digest)?;
            names.push(super::normalise_tag(&tag)?);
        }
        out.push(ImportedImage {
            manifest_digest,
            names,
        });
    }
    Ok(out)
}

/// Records each layer's blob by diff_id, so images built on a loaded image reference the
/// layers as loaded (never recompressed).
fn record_layer_blobs(
    store: &Store,
    layers: &[Descriptor],
    diff_ids: &[Digest],
) -> Result<(), OciError> {
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        store
            .layer_blobs()
            .set(diff_id, &layer.layer_blob())
            .map_err(OciError::store(format!("record layer blob {diff_id}")))?;
    }
    Ok(())
}
