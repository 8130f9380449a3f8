//! OCI image layout export (`oci-layout`, `index.json`, `blobs/sha256/…`), as a directory or a
//! tar (what `-o type=oci` and `skopeo … oci-archive:` use).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use rbuild_cache::Store;
use rbuild_types::{Digest, ImageRef};

use super::archive::ArchiveWriter;
use super::{parent_dir, persist, temp_next_to};
use crate::compress::{gzip_parallel, Compression};
use crate::digest_io::HashingWriter;
use crate::images::load_manifest;
use crate::manifest::{
    layer_compression, oci_layer_type, Descriptor, ImageIndex, ImageManifest,
    CONTAINERD_IMAGE_NAME, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, REF_NAME,
};
use crate::OciError;

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedImage {
    /// Digest of the manifest in the export (differs from the stored one when layers were
    /// compressed for it).
    pub manifest_digest: Digest,
    pub config_digest: Digest,
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
    let image = load_manifest(store, manifest)?;
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

    // Config: unchanged bytes, so the image id stays the same.
    let config_digest = image.manifest.config.digest;
    write_blob_bytes(&blobs, &config_digest, &image.config_bytes)?;
    let config_desc = Descriptor::new(OCI_CONFIG, config_digest, image.config_bytes.len() as u64);

    let mut layers = Vec::new();
    for layer in &image.manifest.layers {
        let src = store.blob_path(&layer.digest);
        if !store.has_blob(&layer.digest) {
            return Err(OciError::MissingBlob(layer.digest));
        }
        match layer_compression(&layer.media_type) {
            Some(Compression::None) if compression == Compression::None => {
                copy_blob(&src, &blobs, &layer.digest)?;
                let mut d = layer.clone();
                d.media_type = oci_layer_type(Compression::None).to_string();
                layers.push(d);
            }
            Some(Compression::None) => layers.push(compress_blob(&src, &blobs, compression)?),
            Some(c) => {
                copy_blob(&src, &blobs, &layer.digest)?;
                let mut d = layer.clone();
                d.media_type = oci_layer_type(c).to_string();
                layers.push(d);
            }
            None => {
                return Err(OciError::Invalid {
                    what: "layer media type",
                    context: format!("manifest {manifest}"),
                    value: layer.media_type.clone(),
                })
            }
        }
    }
    let new_manifest = ImageManifest::oci(config_desc, layers);
    let manifest_bytes = new_manifest.to_json();
    let manifest_digest = Digest::of(&manifest_bytes);
    write_blob_bytes(&blobs, &manifest_digest, &manifest_bytes)?;

    let base = Descriptor {
        platform: Some(image.config.image.platform.clone()),
        ..Descriptor::new(OCI_MANIFEST, manifest_digest, manifest_bytes.len() as u64)
    };
    let entries = if refs.is_empty() {
        vec![base]
    } else {
        refs.iter()
            .map(|r| {
                let mut ann = BTreeMap::new();
                ann.insert(CONTAINERD_IMAGE_NAME.to_string(), r.to_string());
                ann.insert(
                    REF_NAME.to_string(),
                    r.tag.clone().unwrap_or_else(|| "latest".to_string()),
                );
                Descriptor {
                    annotations: Some(ann),
                    ..base.clone()
                }
            })
            .collect()
    };
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
    Ok(ExportedImage {
        manifest_digest,
        config_digest,
    })
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

/// Compresses the uncompressed layer `src` into `blobs` (gzip in parallel, or zstd), named by
/// the digest of the result.
fn compress_blob(
    src: &Path,
    blobs: &Path,
    compression: Compression,
) -> Result<Descriptor, OciError> {
    let input = File::open(src).map_err(OciError::io("open", src))?;
    let tmp = tempfile::Builder::new()
        .prefix(".gz-")
        .tempfile_in(blobs)
        .map_err(OciError::io("create temp file in", blobs))?;
    let mut out = HashingWriter::new(BufWriter::new(tmp.as_file()));
    let compressed = match compression {
        Compression::Zstd => zstd::stream::copy_encode(BufReader::new(input), &mut out, 3),
        _ => gzip_parallel(BufReader::new(input), &mut out).map(|_| ()),
    };
    compressed.map_err(OciError::io("compress", src))?;
    let (digest, size, buf) = out.finish();
    buf.into_inner()
        .map_err(|e| OciError::io("write", blobs)(e.into_error()))?;
    let dest = blobs.join(digest.hex());
    tmp.persist(&dest).map_err(|e| OciError::Io {
        op: "write",
        path: dest.clone(),
        source: e.error,
    })?;
    let media_type = if compression == Compression::Zstd {
        oci_layer_type(Compression::Zstd)
    } else {
        OCI_LAYER_GZIP
    };
    Ok(Descriptor::new(media_type, digest, size))
}
