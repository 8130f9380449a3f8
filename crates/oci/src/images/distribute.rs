//! The distribution form of a stored image: what is exported or pushed. Layers built here are
//! stored uncompressed; this compresses them as asked (gzip, zstd or none, at a level), keeps
//! base layers as they were pulled, and writes a manifest with OCI or Docker media types.
//!
//! Invariants: the config blob is never changed, so the image id is the same in every form;
//! the result depends only on the stored image and the options (compression output does not
//! depend on the thread count), so equal inputs give equal manifest digests.

use std::fs::File;
use std::io::{BufReader, BufWriter};

use rbuild_cache::{LayerBlob, Store};
use rbuild_types::Digest;

use super::load_manifest;
use crate::compress::{compress_parallel, CompressSettings, Compression};
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
        // A lazy layer's blob stays where it is (a push mounts it or skips it; an archive
        // output downloads it first): it is compressed, so it is never recompressed here.
        let obtainable = crate::lazy::obtainable(store, &layer.digest).map_err(OciError::store(
            format!("read the sources of blob {}", layer.digest),
        ))?;
        if !obtainable {
            return Err(OciError::MissingBlob(layer.digest));
        }
        let stored = layer_compression(&layer.media_type).ok_or_else(|| OciError::Invalid {
            what: "layer media type",
            context: format!("manifest {manifest}"),
            value: layer.media_type.clone(),
        })?;
        let wanted = options.compress.compression;
        if stored == Compression::None && wanted != Compression::None {
            let (digest, size) = compressed_layer(store, &layer.digest, &options.compress)?;
            layers.push((wanted, digest, size));
        } else {
            layers.push((stored, layer.digest, layer.size));
        }
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

/// The compressed form of the stored uncompressed layer blob `digest` (a layer's diff_id) per
/// `settings`: the one made before, when the store recorded it and still holds it, else a new
/// one ([`compress_into_store`]), recorded in the `layer_blobs` table so that the next push,
/// export or cache export reuses it instead of compressing again. Only the default level is
/// recorded and reused (the compressor is deterministic, so that blob is what a new run would
/// make).
pub(crate) fn compressed_layer(
    store: &Store,
    digest: &Digest,
    settings: &CompressSettings,
) -> Result<(Digest, u64), OciError> {
    let wanted = oci_layer_type(settings.compression);
    let memo = settings.level.is_none();
    if memo {
        let known = store
            .layer_blobs()
            .get(digest)
            .map_err(OciError::store(format!("read layer blob record {digest}")))?;
        if let Some(blob) = known.filter(|b| b.media_type == wanted && store.blobs().has(&b.digest))
        {
            return Ok((blob.digest, blob.size));
        }
    }
    let (compressed, size) = compress_into_store(store, digest, settings)?;
    if memo {
        let blob = LayerBlob {
            digest: compressed,
            media_type: wanted.to_string(),
            size,
        };
        store
            .layer_blobs()
            .set(digest, &blob)
            .map_err(OciError::store(format!("record layer blob {digest}")))?;
    }
    Ok((compressed, size))
}

/// Compresses the stored uncompressed blob `digest` into a new blob; returns its digest and
/// size. Streams: memory is bounded by the compressor's buffers, whatever the layer size.
pub(crate) fn compress_into_store(
    store: &Store,
    digest: &Digest,
    settings: &CompressSettings,
) -> Result<(Digest, u64), OciError> {
    let src = store.blobs().path(digest);
    let input = File::open(&src).map_err(OciError::io("open", &src))?;
    let writer = store
        .blobs()
        .writer()
        .map_err(OciError::store("open blob writer"))?;
    let mut buffered = BufWriter::with_capacity(1 << 20, writer);
    compress_parallel(BufReader::new(input), &mut buffered, settings)
        .map_err(OciError::io("compress", &src))?;
    let writer = buffered
        .into_inner()
        .map_err(|e| OciError::io("compress", &src)(e.into_error()))?;
    writer
        .commit(None)
        .map_err(OciError::store(format!("store compressed layer {digest}")))
}
