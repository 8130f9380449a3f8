//! The distribution form of a stored image: what is exported or pushed. Layers built here are
//! stored uncompressed; this compresses them as asked (gzip, zstd or none, at a level), keeps
//! base layers as they were pulled, and writes a manifest with OCI or Docker media types.
//!
//! Invariants: the config blob is never changed, so the image id is the same in every form;
//! the result depends only on the stored image and the options (compression output does not
//! depend on the thread count), so equal inputs give equal manifest digests.

use rbuild_cache::Store;
use rbuild_types::Digest;

use super::compressed::compressed_layer;
use super::load_manifest;
use crate::compress::{CompressSettings, Compression};
use crate::manifest::{
    layer_compression, oci_layer_type, Descriptor, ImageManifest, DOCKER_CONFIG, DOCKER_LAYER,
    DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST,
};
use crate::OciError;

/// How to form the distributed image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DistOptions {
    /// Compression for layers stored uncompressed (base layers keep theirs).
    pub compress: CompressSettings,
    /// OCI media types (default) or Docker's (`oci-mediatypes=false`). An image with a zstd
    /// layer always gets OCI media types: Docker's have no zstd layer type (as BuildKit does).
    pub oci_media_types: bool,
}

impl Default for DistOptions {
    fn default() -> Self {
        DistOptions {
            compress: CompressSettings::new(Compression::Gzip),
            oci_media_types: true,
        }
    }
}

/// A distribution manifest written to the store; every blob it names is stored, or is a lazy
/// layer's (downloadable from a recorded source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistImage {
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub media_type: &'static str,
    /// The image id (unchanged config).
    pub config_digest: Digest,
    pub manifest: ImageManifest,
}

impl DistImage {
    /// A descriptor of the manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type, self.manifest_digest, self.manifest_size)
    }
}

/// Writes (into the store) the distribution form of stored manifest `manifest`.
pub fn distribution_image(
    store: &Store,
    manifest: &Digest,
    options: &DistOptions,
) -> Result<DistImage, OciError> {
    let image = load_manifest(store, manifest)?;
    let mut layers = Vec::with_capacity(image.manifest.layers.len());
    for layer in &image.manifest.layers {
        let stored = layer_compression(&layer.media_type).ok_or_else(|| OciError::Invalid {
            what: "layer media type",
            context: format!("manifest {manifest}"),
            value: layer.media_type.clone(),
        })?;
        let wanted = options.compress.compression;
        if stored == Compression::None && wanted != Compression::None {
            // The recorded compressed form, or one made now (from the snapshot of a layer
            // built here whose blob was not written yet: `compress_teeing`).
            let (digest, size) = compressed_layer(store, &layer.digest, &options.compress)?;
            layers.push((wanted, digest, size));
            continue;
        }
        // Used as it is: a layer built here is made from its snapshot if its blob was not
        // written yet; a lazy layer's blob stays where it is (a push mounts it or skips it; an
        // archive output downloads it first).
        if stored == Compression::None {
            super::ensure_stored(store, &layer.digest)?;
        }
        let obtainable = crate::lazy::obtainable(store, &layer.digest).map_err(OciError::store(
            format!("read the sources of blob {}", layer.digest),
        ))?;
        if !obtainable {
            return Err(OciError::MissingBlob(layer.digest));
        }
        layers.push((stored, layer.digest, layer.size));
    }
    let oci = options.oci_media_types || layers.iter().any(|l| l.0 == Compression::Zstd);
    let layer_type = |c: Compression| match (oci, c) {
        (false, Compression::None) => DOCKER_LAYER,
        (false, Compression::Gzip) => DOCKER_LAYER_GZIP,
        (_, c) => oci_layer_type(c),
    };
    let (manifest_type, config_type) = if oci {
        (OCI_MANIFEST, OCI_CONFIG)
    } else {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    };
    let config = Descriptor::new(
        config_type,
        image.manifest.config.digest,
        image.config_bytes.len() as u64,
    );
    let mut out = ImageManifest::oci(
        config,
        layers
            .into_iter()
            .map(|(c, d, size)| Descriptor::new(layer_type(c), d, size))
            .collect(),
    );
    out.media_type = Some(manifest_type.to_string());
    out.annotations = image.manifest.annotations.clone();
    let bytes = out.to_json();
    let manifest_digest = store
        .blobs()
        .put(&bytes)
        .map_err(OciError::store("write distribution manifest"))?;
    Ok(DistImage {
        manifest_digest,
        manifest_size: bytes.len() as u64,
        media_type: manifest_type,
        config_digest: image.manifest.config.digest,
        manifest: out,
    })
}
