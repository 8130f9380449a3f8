//! The `type=registry` cache: the record ([`super::record`]) and its layer blobs pushed under a
//! reference (`ref=REG/REPO:TAG`), in the two shapes BuildKit's registry cache pushes
//! (moby/buildkit `cache/remotecache/export.go`):
//!
//! - by default an image index (OCI, or a Docker manifest list with `oci-mediatypes=false`)
//!   whose entries are the layer blobs (the steps' layers, then any exported cache mounts',
//!   so that registries keep them and their GC does not drop them) and, last, the record as a blob of media type
//!   [`RECORD_MEDIA_TYPE`] (BuildKit's entry is its own `application/vnd.buildkit.cacheconfig.v0`;
//!   ours is rbuild's record, which BuildKit does not read, nor we its);
//! - with `image-manifest=true` an OCI image manifest whose config is the record and whose
//!   layers are the blobs (cache mounts' included), which registries that refuse non-manifest index entries (GHCR, ECR,
//!   Harbor) accept. It needs OCI media types, as BuildKit's does.
//!
//! Blobs go up first (each `HEAD`ed, mounted or uploaded as an image push does, in parallel),
//! the manifest last, so the registry never holds a record whose blobs are missing. A reader
//! accepts either shape, whichever the writer chose, and also an image whose config holds an
//! inline record ([`super::inline`]).

use rbuild_cache::Store;
use rbuild_types::{Digest, ImageRef};

use super::inline::{extract, InlineError};
use super::record::{CacheRecordFile, RecordError, RECORD_MEDIA_TYPE};
use crate::compress::{CompressSettings, Compression};
use crate::manifest::{
    Descriptor, ImageIndex, ImageManifest, DOCKER_LIST, OCI_INDEX, OCI_MANIFEST,
};
use crate::registry::manifest::ManifestKind;
use crate::registry::push_image::push_blobs;
use crate::registry::{Client, PushError, PushReport, RegistryError, CONFIG_LIMIT};

/// The largest record a reader accepts (a record of tens of thousands of steps is a few MiB).
pub const RECORD_LIMIT: u64 = 64 << 20;

/// How a registry cache is pushed (`--cache-to type=registry,…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryCacheOptions {
    /// `image-manifest=true`: an image manifest whose config is the record, not an index.
    pub image_manifest: bool,
    /// `oci-mediatypes=false`: a Docker manifest list and Docker layer media types.
    pub oci_media_types: bool,
    /// `compression=`, `compression-level=`: for layers the store holds uncompressed.
    pub compress: CompressSettings,
}

impl Default for RegistryCacheOptions {
    fn default() -> Self {
        RegistryCacheOptions {
            image_manifest: false,
            oci_media_types: true,
            compress: CompressSettings::new(Compression::Gzip),
        }
    }
}

/// Why a registry cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryCacheError {
    #[error(transparent)]
    Registry(Box<RegistryError>),
    #[error("pushing the cache's blobs to {target}: {source}")]
    Push {
        target: String,
        #[source]
        source: Box<PushError>,
    },
    #[error("{reference}: not valid JSON of an image {what}: {source}")]
    Json {
        reference: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{reference}: {source}")]
    Inline {
        reference: String,
        #[source]
        source: Box<InlineError>,
    },
    #[error("{reference} holds no rbuild cache record (no entry or config of type {RECORD_MEDIA_TYPE}, no inline cache)")]
    NoRecord { reference: String },
    #[error("{reference}: {source}")]
    Record {
        reference: String,
        #[source]
        source: RecordError,
    },
}

impl From<RegistryError> for RegistryCacheError {
    fn from(e: RegistryError) -> Self {
        RegistryCacheError::Registry(Box::new(e))
    }
}

/// Pushes `record` (whose layer blobs are all in `store`) to `target`; returns the digest of
/// the manifest or index the reference now names.
pub fn push_record(
    client: &Client,
    store: &Store,
    target: &ImageRef,
    record: &CacheRecordFile,
    key_version: &str,
    options: &RegistryCacheOptions,
) -> Result<Digest, RegistryCacheError> {
    let bytes = record.encode(key_version);
    let config = Descriptor::new(RECORD_MEDIA_TYPE, Digest::of(&bytes), bytes.len() as u64);
    let layers = record.layer_descriptors(options.oci_media_types);
    let blobs: Vec<(Digest, u64)> = layers.iter().map(|l| (l.digest, l.size)).collect();
    let mut report = PushReport {
        manifest: config.digest,
        uploaded: 0,
        mounted: 0,
        skipped: 0,
    };
    push_blobs(client, store, &config.digest, target, &blobs, &mut report).map_err(|source| {
        RegistryCacheError::Push {
            target: target.to_string(),
            source: Box::new(source),
        }
    })?;
    client.push_blob_bytes(target, &bytes)?;
    let (media_type, manifest) = shape(config, layers, options);
    Ok(client.push_manifest(target, &target.reference(), media_type, &manifest)?)
}

/// The manifest (or index) that names the record and its layers, and its media type.
fn shape(
    config: Descriptor,
    layers: Vec<Descriptor>,
    options: &RegistryCacheOptions,
) -> (&'static str, Vec<u8>) {
    if options.image_manifest {
        return (OCI_MANIFEST, ImageManifest::oci(config, layers).to_json());
    }
    let mut entries = layers;
    entries.push(config);
    let media_type = if options.oci_media_types {
        OCI_INDEX
    } else {
        DOCKER_LIST
    };
    let mut index = ImageIndex::oci(entries);
    index.media_type = Some(media_type.to_string());
    (media_type, index.to_json())
}

/// Reads the record that `source` names (either shape), written for `key_version`.
pub fn pull_record(
    client: &Client,
    source: &ImageRef,
    key_version: &str,
) -> Result<CacheRecordFile, RegistryCacheError> {
    let reference = source.to_string();
    let raw = client.fetch_manifest(source, &source.reference())?;
    let json_err = |what| {
        let reference = reference.clone();
        move |source| RegistryCacheError::Json {
            reference,
            what,
            source,
        }
    };
    let record = match raw.kind {
        ManifestKind::Index => {
            let index: ImageIndex =
                serde_json::from_slice(&raw.bytes).map_err(json_err("index"))?;
            index
                .manifests
                .into_iter()
                .find(|d| d.media_type == RECORD_MEDIA_TYPE)
        }
        ManifestKind::Image => {
            let manifest: ImageManifest =
                serde_json::from_slice(&raw.bytes).map_err(json_err("manifest"))?;
            if manifest.config.media_type != RECORD_MEDIA_TYPE {
                return inline_record(client, source, &manifest, key_version);
            }
            Some(manifest.config)
        }
    };
    let record = record.ok_or_else(|| RegistryCacheError::NoRecord {
        reference: reference.clone(),
    })?;
    let bytes = client.fetch_blob_bytes(source, &record.digest, RECORD_LIMIT)?;
    CacheRecordFile::decode(&bytes, key_version)
        .map_err(|source| RegistryCacheError::Record { reference, source })
}

/// The inline record in the config of image `source` (whose manifest is `manifest`).
fn inline_record(
    client: &Client,
    source: &ImageRef,
    manifest: &ImageManifest,
    key_version: &str,
) -> Result<CacheRecordFile, RegistryCacheError> {
    let reference = source.to_string();
    let digest = manifest.config.digest;
    let config = client.fetch_blob_bytes(source, &digest, CONFIG_LIMIT)?;
    match extract(&config, digest, manifest, key_version) {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(RegistryCacheError::NoRecord { reference }),
        Err(e) => Err(RegistryCacheError::Inline {
            reference,
            source: Box::new(e),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::OCI_LAYER_GZIP;

    fn descriptors() -> (Descriptor, Vec<Descriptor>) {
        (
            Descriptor::new(RECORD_MEDIA_TYPE, Digest::of(b"record"), 6),
            vec![Descriptor::new(OCI_LAYER_GZIP, Digest::of(b"layer"), 5)],
        )
    }

    #[test]
    fn the_three_shapes_have_buildkits_media_types() {
        let (config, layers) = descriptors();
        let index = RegistryCacheOptions::default();
        let (mt, bytes) = shape(config.clone(), layers.clone(), &index);
        let parsed: ImageIndex = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (mt, parsed.media_type.as_deref()),
            (OCI_INDEX, Some(OCI_INDEX))
        );
        assert_eq!(
            parsed.manifests.last().unwrap().media_type,
            RECORD_MEDIA_TYPE
        );
        assert_eq!(parsed.manifests.len(), 2);

        let docker = RegistryCacheOptions {
            oci_media_types: false,
            ..index
        };
        let (mt, bytes) = shape(config.clone(), layers.clone(), &docker);
        let parsed: ImageIndex = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (mt, parsed.media_type.as_deref()),
            (DOCKER_LIST, Some(DOCKER_LIST))
        );

        let manifest = RegistryCacheOptions {
            image_manifest: true,
            ..index
        };
        let (mt, bytes) = shape(config, layers, &manifest);
        let parsed: ImageManifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(mt, OCI_MANIFEST);
        assert_eq!(parsed.config.media_type, RECORD_MEDIA_TYPE);
        assert_eq!(parsed.layers[0].media_type, OCI_LAYER_GZIP);
    }
}
