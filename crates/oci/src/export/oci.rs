//! OCI image layout export (`oci-layout`, `index.json`, `blobs/sha256/…`), as a directory or a
//! tar (what `-o type=oci` and `skopeo … oci-archive:` use).

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rbuild_cache::Store;
use rbuild_types::Digest;

use super::confined::ConfinedDir;
use super::dest::OutputFile;
use crate::compress::{CompressSettings, Compression};
use crate::images::{
    distribution_image, distribution_index, load_index, load_manifest, parse_image_name, DistImage,
    DistOptions, LoadedImage,
};
use crate::manifest::{Descriptor, ImageIndex, CONTAINERD_IMAGE_NAME, REF_NAME};
use crate::OciError;
use rbuild_archive::ArchiveWriter;

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
///
/// A tar is an [`OutputFile`] (a regular file is replaced atomically; a device, FIFO or
/// symlink is written through). A directory is written confined to itself
/// ([`ConfinedDir`]): links already inside it are replaced, never followed.
pub fn export_oci_with(
    store: &Store,
    images: &[(Digest, Vec<String>)],
    dest: &Path,
    as_tar: bool,
    options: &DistOptions,
) -> Result<Vec<ExportedImage>, OciError> {
    let layout = Layout::of(store, images, options)?;
    if as_tar {
        let mut out = OutputFile::create(dest)?;
        layout.write_tar(&mut out, dest)?;
        out.commit()?;
    } else {
        layout.write_dir(dest)?;
    }
    Ok(layout.exported)
}

/// [`export_oci_with`] as a tar into any writer (standard output); `name` names it in errors.
pub fn export_oci_tar_to(
    store: &Store,
    images: &[(Digest, Vec<String>)],
    out: impl Write,
    name: &Path,
    options: &DistOptions,
) -> Result<Vec<ExportedImage>, OciError> {
    let layout = Layout::of(store, images, options)?;
    layout.write_tar(out, name)?;
    Ok(layout.exported)
}

/// Adds the blobs of one image in its distribution form `dist` (of stored `image`): the
/// config as stored, the layers, the manifest.
fn add_image(
    blobs: &mut BTreeMap<String, BlobSource>,
    store: &Store,
    image: &LoadedImage,
    dist: &DistImage,
) {
    // Config: unchanged bytes, so the image id stays the same. (An attestation manifest's
    // distribution form has a config of its own, written to the store.)
    let config = if image.manifest.config.digest == dist.config_digest {
        BlobSource::Bytes(image.config_bytes.clone())
    } else {
        BlobSource::Store(store.blobs().path(&dist.config_digest))
    };
    blobs.insert(dist.config_digest.hex().to_string(), config);
    for d in dist
        .manifest
        .layers
        .iter()
        .map(|l| &l.digest)
        .chain([&dist.manifest_digest])
    {
        blobs
            .entry(d.hex().to_string())
            .or_insert_with(|| BlobSource::Store(store.blobs().path(d)));
    }
}

/// Where a blob of the layout comes from.
enum BlobSource {
    /// A blob file of the store.
    Store(PathBuf),
    /// Bytes at hand (the config, as stored).
    Bytes(Vec<u8>),
}

/// An OCI image layout before it is written: its blobs by hex digest (sorted, as the tar
/// lists them), its index, and what it holds.
struct Layout {
    blobs: BTreeMap<String, BlobSource>,
    index: Vec<u8>,
    exported: Vec<ExportedImage>,
}

impl Layout {
    fn of(
        store: &Store,
        images: &[(Digest, Vec<String>)],
        options: &DistOptions,
    ) -> Result<Layout, OciError> {
        let mut blobs = BTreeMap::new();
        let mut entries = Vec::new();
        let mut exported = Vec::new();
        for (manifest, names) in images {
            let refs = names
                .iter()
                .map(|n| parse_image_name(n))
                .collect::<Result<Vec<_>, _>>()?;
            let (base, written) = match load_index(store, manifest)? {
                Some(index) => {
                    let dist = distribution_index(store, &index, options)?;
                    for (_, stored, child) in &dist.children {
                        add_image(&mut blobs, store, &load_manifest(store, stored)?, child);
                    }
                    blobs
                        .entry(dist.digest.hex().to_string())
                        .or_insert_with(|| BlobSource::Store(store.blobs().path(&dist.digest)));
                    let first = dist.children.first().map(|c| c.2.config_digest);
                    let written = ExportedImage {
                        manifest_digest: dist.digest,
                        config_digest: first.unwrap_or(dist.digest),
                        media_type: dist.media_type,
                        manifest_size: dist.size,
                    };
                    (dist.descriptor(), written)
                }
                None => {
                    let image = load_manifest(store, manifest)?;
                    let dist = distribution_image(store, manifest, options)?;
                    add_image(&mut blobs, store, &image, &dist);
                    let base = Descriptor {
                        platform: Some(image.config.image.platform.clone()),
                        ..dist.descriptor()
                    };
                    let written = ExportedImage {
                        manifest_digest: dist.manifest_digest,
                        config_digest: dist.config_digest,
                        media_type: dist.media_type,
                        manifest_size: dist.manifest_size,
                    };
                    (base, written)
                }
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
            exported.push(written);
        }
        Ok(Layout {
            blobs,
            index: ImageIndex::oci(entries).to_json(),
            exported,
        })
    }

    /// The layout as a directory at `dest` (created if missing), confined to it.
    fn write_dir(&self, dest: &Path) -> Result<(), OciError> {
        let root = ConfinedDir::open_root(dest)?;
        let blobs = root.subdir("blobs")?.subdir("sha256")?;
        for (hex, source) in &self.blobs {
            match source {
                BlobSource::Store(path) => blobs.link_or_copy(hex, path)?,
                BlobSource::Bytes(bytes) => blobs.write_file(hex, bytes)?,
            }
        }
        root.write_file("oci-layout", OCI_LAYOUT)?;
        root.write_file("index.json", &self.index)
    }

    /// The layout as a tar: `oci-layout`, `index.json`, then the blobs sorted by name.
    fn write_tar(&self, out: impl Write, name: &Path) -> Result<(), OciError> {
        let mut ar = ArchiveWriter::new(BufWriter::new(out), name);
        ar.add_bytes("oci-layout", OCI_LAYOUT)?;
        ar.add_bytes("index.json", &self.index)?;
        ar.add_dir("blobs/")?;
        ar.add_dir("blobs/sha256/")?;
        for (hex, source) in &self.blobs {
            let entry = format!("blobs/sha256/{hex}");
            match source {
                BlobSource::Store(path) => ar.add_file(&entry, path)?,
                BlobSource::Bytes(bytes) => ar.add_bytes(&entry, bytes)?,
            }
        }
        ar.finish()?.flush().map_err(OciError::io("write", name))
    }
}
