//! OCI image layout export (`oci-layout`, `index.json`, `blobs/sha256/…`), as a directory or a
//! tar (what `-o type=oci` and `skopeo … oci-archive:` use).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rbuild_cache::Store;
use rbuild_types::{Digest, ImageRef};

use super::archive::ArchiveWriter;
use super::{parent_dir, persist, temp_next_to};
use crate::compress::{CompressSettings, Compression};
use crate::images::{distribution_image, load_manifest, DistOptions};
use crate::manifest::{Descriptor, ImageIndex, CONTAINERD_IMAGE_NAME, REF_NAME};
use crate::OciError;

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedImage {
    /// Digest of the manifest in the export (differs from the stored one when layers were
    /// compressed for it).
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    /// The manifest's media type and size (for `containerimage.descriptor`).
    pub media_type: &'static str,
    pub manifest_size: u64,
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes the stored image `manifest` as an OCI image layout at `dest` (a tar file if
/// `as_tar`, else a directory), with one index entry per name in `names` (annotated with
/// `org.opencontainers.image.ref.name` = the tag and `io.containerd.image.name` = the full
/// name), or one unnamed entry if `names` is empty. Uncompressed layers are gzipped.
pub fn export_oci(
    store: &Store,
    manifest: &Digest,
    dest: &Path,
    as_tar: bool,
    names: &[String],
) -> Result<ExportedImage, OciError> {
    export_oci_compressed(store, manifest, dest, as_tar, names, Compression::Gzip)
}

/// [`export_oci`] with a choice of compression for the layers that are uncompressed in the
/// store (`compression=gzip|zstd`; `None` keeps them uncompressed). Layers that are already
/// compressed (base-image blobs) are copied as they are.
pub fn export_oci_compressed(
    store: &Store,
    manifest: &Digest,
    dest: &Path,
    as_tar: bool,
    names: &[String],
    compression: Compression,
) -> Result<ExportedImage, OciError> {
    let options = DistOptions {
        compress: CompressSettings::new(compression),
        oci_media_types: true,
    };
    let images = [(*manifest, names.to_vec())];
    let mut out = export_oci_with(store, &images, dest, as_tar, &options)?;
    out.pop().ok_or(OciError::MissingBlob(*manifest))
}

/// Writes several stored images (each a manifest digest and its names) into one OCI image
/// layout at `dest` (tar or directory), in their distribution form per `options`
/// (compression, level, media types). Returns what was written for each, in order.
pub fn export_oci_with(
    store: &Store,
    images: &[(Digest, Vec<String>)],
    dest: &Path,
    as_tar: bool,
    options: &DistOptions,
) -> Result<Vec<ExportedImage>, OciError> {
    let staging;
    let layout: PathBuf = if as_tar {
        let parent = parent_dir(dest);
        staging = tempfile::Builder::new()
            .prefix(".rbuild-oci-")
            .tempdir_in(&parent)
            .map_err(OciError::io("create temp directory in", &parent))?;
        staging.path().to_path_buf()
    } else {
        dest.to_path_buf()
    };
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(OciError::io("create directory", &blobs))?;

    let mut entries = Vec::new();
    let mut exported = Vec::new();
    for (manifest, names) in images {
        let refs = names
            .iter()
            .map(|n| {
                ImageRef::parse(n).map_err(|e| OciError::Invalid {
                    what: "image name",
                    context: e.to_string(),
                    value: n.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let image = load_manifest(store, manifest)?;
        let dist = distribution_image(store, manifest, options)?;
        // Config: unchanged bytes, so the image id stays the same.
        write_blob_bytes(&blobs, &dist.config_digest, &image.config_bytes)?;
        for layer in &dist.manifest.layers {
            copy_blob(&store.blob_path(&layer.digest), &blobs, &layer.digest)?;
        }
        copy_blob(
            &store.blob_path(&dist.manifest_digest),
            &blobs,
            &dist.manifest_digest,
        )?;
        let base = Descriptor {
            platform: Some(image.config.image.platform.clone()),
            ..dist.descriptor()
        };
        if refs.is_empty() {
            entries.push(base.clone());
        }
        for r in &refs {
            let mut ann = BTreeMap::new();
            ann.insert(CONTAINERD_IMAGE_NAME.to_string(), r.to_string());
            ann.insert(
                REF_NAME.to_string(),
                r.tag.clone().unwrap_or_else(|| "latest".to_string()),
            );
            entries.push(Descriptor {
                annotations: Some(ann),
                ..base.clone()
            });
        }
        exported.push(ExportedImage {
            manifest_digest: dist.manifest_digest,
            config_digest: dist.config_digest,
            media_type: dist.media_type,
            manifest_size: dist.manifest_size,
        });
    }
    let index = ImageIndex::oci(entries).to_json();
    write_file(&layout.join("oci-layout"), OCI_LAYOUT)?;
    write_file(&layout.join("index.json"), &index)?;

    if as_tar {
        let tmp = temp_next_to(dest)?;
        let mut ar = ArchiveWriter::new(BufWriter::new(tmp.as_file()), dest);
        ar.add_bytes("oci-layout", OCI_LAYOUT)?;
        ar.add_bytes("index.json", &index)?;
        ar.add_dir("blobs/")?;
        ar.add_dir("blobs/sha256/")?;
        let mut names: Vec<_> = fs::read_dir(&blobs)
            .map_err(OciError::io("read directory", &blobs))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let name = n.to_string_lossy();
            ar.add_file(&format!("blobs/sha256/{name}"), &blobs.join(&n))?;
        }
        ar.finish()?.flush().map_err(OciError::io("write", dest))?;
        persist(tmp, dest)?;
    }
    Ok(exported)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    fs::write(path, bytes).map_err(OciError::io("write", path))
}

fn write_blob_bytes(blobs: &Path, digest: &Digest, bytes: &[u8]) -> Result<(), OciError> {
    write_file(&blobs.join(digest.hex()), bytes)
}

fn copy_blob(src: &Path, blobs: &Path, digest: &Digest) -> Result<(), OciError> {
    let dest = blobs.join(digest.hex());
    if dest.exists() {
        return Ok(());
    }
    // A hardlink is free when the layout is on the store's filesystem; copy otherwise.
    if fs::hard_link(src, &dest).is_err() {
        fs::copy(src, &dest).map_err(OciError::io("copy blob to", &dest))?;
    }
    Ok(())
}
