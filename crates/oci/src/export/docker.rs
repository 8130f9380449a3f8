//! docker-archive export: the tar `docker save` writes and `docker load`/`podman load` read
//! (`manifest.json`, the config, one file per layer).

use std::io::{BufWriter, Write};
use std::path::Path;

use rbuild_cache::Store;
use rbuild_types::Digest;
use serde::Serialize;

use super::dest::OutputFile;
use crate::images::{distribution_image, load_manifest, parse_image_name, DistOptions};
use crate::OciError;
use rbuild_archive::ArchiveWriter;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Writes the stored image `manifest` as a docker-archive tar at `dest`, tagged with `names`
/// (Docker's short form, e.g. `app:1.0`). Layer blobs are copied as stored (plain or gzip;
/// both load).
pub fn export_docker(
    store: &Store,
    manifest: &Digest,
    dest: &Path,
    names: &[String],
) -> Result<(), OciError> {
    export_docker_many(store, &[(*manifest, names.to_vec())], dest, None)
}

/// Writes several stored images (each a manifest digest and its names) into one
/// docker-archive tar at `dest` (what `docker save A B` writes). A blob shared by images is
/// written once. With `layers`, each image is written in that distribution form (layers
/// compressed as asked); without, layer blobs are copied as stored. `dest` is an
/// [`OutputFile`]: a regular file is replaced atomically; a device, FIFO or symlink is
/// written through.
pub fn export_docker_many(
    store: &Store,
    images: &[(Digest, Vec<String>)],
    dest: &Path,
    layers: Option<&DistOptions>,
) -> Result<(), OciError> {
    let mut out = OutputFile::create(dest)?;
    export_docker_to(store, images, &mut out, dest, layers)?;
    out.commit()
}

/// [`export_docker_many`] into any writer (standard output); `name` names it in errors.
pub fn export_docker_to(
    store: &Store,
    images: &[(Digest, Vec<String>)],
    out: impl Write,
    name: &Path,
    layers: Option<&DistOptions>,
) -> Result<(), OciError> {
    let blob_name = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let mut loaded = Vec::new();
    let mut entries = Vec::new();
    for (manifest, names) in images {
        let mut image = load_manifest(store, manifest)?;
        if let Some(options) = layers {
            image.manifest = distribution_image(store, manifest, options)?.manifest;
        }
        let repo_tags = names
            .iter()
            .map(|n| parse_image_name(n).map(|r| r.familiar()))
            .collect::<Result<Vec<_>, _>>()?;
        entries.push(ManifestEntry {
            config: blob_name(&image.manifest.config.digest),
            repo_tags,
            layers: image
                .manifest
                .layers
                .iter()
                .map(|l| blob_name(&l.digest))
                .collect(),
        });
        loaded.push(image);
    }
    let manifest_json = serde_json::to_vec(&entries).map_err(|source| OciError::Json {
        what: "docker manifest.json",
        context: name.display().to_string(),
        source,
    })?;

    let mut ar = ArchiveWriter::new(BufWriter::new(out), name);
    ar.add_dir("blobs/")?;
    ar.add_dir("blobs/sha256/")?;
    let mut written = std::collections::HashSet::new();
    for image in &loaded {
        let config = image.manifest.config.digest;
        if written.insert(config) {
            ar.add_bytes(&blob_name(&config), &image.config_bytes)?;
        }
        for layer in &image.manifest.layers {
            if !crate::images::ensure_stored(store, &layer.digest)? {
                return Err(OciError::MissingBlob(layer.digest));
            }
            if written.insert(layer.digest) {
                ar.add_file(
                    &blob_name(&layer.digest),
                    &store.blobs().path(&layer.digest),
                )?;
            }
        }
    }
    ar.add_bytes("manifest.json", &manifest_json)?;
    ar.finish()?.flush().map_err(OciError::io("write", name))
}
