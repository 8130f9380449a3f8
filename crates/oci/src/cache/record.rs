//! The cache record: what a `--cache-to` writes and a `--cache-from` reads. It maps rbuild's
//! cache keys (the solver's `keys.rs`) to the layers of each step's result.
//!
//! Encoding (JSON; it is the config blob of the cache manifest, media type [`RECORD_MEDIA_TYPE`]):
//!
//! ```json
//! { "version": 2,
//!   "keyVersion": "rbuild-cache-key-v3",
//!   "layers": [ { "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
//!                 "digest": "sha256:…", "size": 123, "diffID": "sha256:…",
//!                 "snapshot": "sha256:…" } ],
//!   "steps":  [ { "key": "sha256:…", "layers": [0, 1] } ],
//!   "cacheMounts": [ { "id": "pip",
//!                      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
//!                      "digest": "sha256:…", "size": 456, "diffID": "sha256:…" } ] }
//! ```
//!
//! - `version` is [`RECORD_VERSION`], this layout's; `keyVersion` is the solver's `KEY_VERSION`
//!   the keys were computed with. A record whose either version differs from the reader's is
//!   refused as a whole ([`RecordError::Version`], [`RecordError::KeyVersion`]), never misread.
//! - `layers` lists each distinct layer once: its blob (media type, digest, size — the same blob
//!   as the image layer, so nothing is stored twice), its uncompressed digest, and the snapshot
//!   it becomes in the store (a step's own layer is named by its key, a base layer by its
//!   diff_id), so that an importing store ends up with the same layers under the same names.
//! - `steps` maps each key to its result, bottom layer first, as indices into `layers`.
//! - `cacheMounts` (new in version 2; absent when empty) lists the `RUN --mount=type=cache`
//!   directories exported with `cache-mounts=true`, each once, by cache id (the mount's `id=`,
//!   which names its directory in the store): the directory's contents as a layer tar blob
//!   (media type, digest, size; the tar's digest as `diffID`), listed with the layers in the
//!   manifest that holds the record, so registries keep it. Version 1 had no such field.

use std::collections::BTreeMap;

use rbuild_ports::{CacheLayer, LayerMediaType};
use rbuild_types::{Digest, SnapshotId};
use serde::{Deserialize, Serialize};

use crate::manifest::{
    Descriptor, DOCKER_LAYER, DOCKER_LAYER_GZIP, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
};

/// The version of this encoding. Bump it on any change to the fields or their meaning.
pub const RECORD_VERSION: u32 = 2;

/// Media type of the record blob (the cache manifest's config).
pub const RECORD_MEDIA_TYPE: &str = "application/vnd.rbuild.cache.record.v2+json";

/// A decoded record: each key's layers, bottom first, and the exported cache mounts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheRecordFile {
    pub steps: BTreeMap<Digest, Vec<CacheLayer>>,
    /// The exported contents of cache mounts, by cache id (`cache-mounts=true`).
    pub cache_mounts: BTreeMap<String, CacheMountBlob>,
}

/// The exported contents of one cache mount: a layer tar blob of its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheMountBlob {
    pub media_type: LayerMediaType,
    pub digest: Digest,
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// Why a record cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the cache record is not valid JSON of its format: {0}")]
    Json(#[source] serde_json::Error),
    #[error("the cache record has version {found}, this rbuild reads version {expected}")]
    Version { found: u32, expected: u32 },
    #[error("the cache record's keys are {found}, this rbuild's are {expected}")]
    KeyVersion { found: String, expected: String },
    #[error("step {key} names layer {index}, but the record has {count} layers")]
    LayerIndex {
        key: Digest,
        index: usize,
        count: usize,
    },
}

#[derive(Serialize, Deserialize)]
struct Encoded {
    version: u32,
    #[serde(rename = "keyVersion")]
    key_version: String,
    layers: Vec<EncodedLayer>,
    steps: Vec<EncodedStep>,
    #[serde(rename = "cacheMounts", default, skip_serializing_if = "Vec::is_empty")]
    cache_mounts: Vec<EncodedMount>,
}

#[derive(Serialize, Deserialize)]
struct EncodedMount {
    id: String,
    #[serde(rename = "mediaType")]
    media_type: MediaType,
    digest: Digest,
    size: u64,
    #[serde(rename = "diffID")]
    diff_id: Digest,
}

/// Only `version` first, so a record of another version is told apart before its fields.
#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
    #[serde(rename = "keyVersion", default)]
    key_version: String,
}

#[derive(Serialize, Deserialize)]
struct EncodedLayer {
    #[serde(rename = "mediaType")]
    media_type: MediaType,
    digest: Digest,
    size: u64,
    #[serde(rename = "diffID")]
    diff_id: Digest,
    snapshot: Digest,
}

#[derive(Serialize, Deserialize)]
struct EncodedStep {
    key: Digest,
    layers: Vec<usize>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
enum MediaType {
    #[serde(rename = "application/vnd.oci.image.layer.v1.tar")]
    Tar,
    #[serde(rename = "application/vnd.oci.image.layer.v1.tar+gzip")]
    TarGzip,
    #[serde(rename = "application/vnd.oci.image.layer.v1.tar+zstd")]
    TarZstd,
}

impl From<LayerMediaType> for MediaType {
    fn from(m: LayerMediaType) -> Self {
        match m {
            LayerMediaType::Tar => MediaType::Tar,
            LayerMediaType::TarGzip => MediaType::TarGzip,
            LayerMediaType::TarZstd => MediaType::TarZstd,
        }
    }
}

impl From<MediaType> for LayerMediaType {
    fn from(m: MediaType) -> Self {
        match m {
            MediaType::Tar => LayerMediaType::Tar,
            MediaType::TarGzip => LayerMediaType::TarGzip,
            MediaType::TarZstd => LayerMediaType::TarZstd,
        }
    }
}

/// The OCI media type string of a layer media type.
pub fn media_type_str(m: LayerMediaType) -> &'static str {
    match m {
        LayerMediaType::Tar => OCI_LAYER,
        LayerMediaType::TarGzip => OCI_LAYER_GZIP,
        LayerMediaType::TarZstd => OCI_LAYER_ZSTD,
    }
}

/// The Docker media type of a layer media type (zstd has none: it keeps the OCI type, as
/// BuildKit does).
fn docker_media_type_str(m: LayerMediaType) -> &'static str {
    match m {
        LayerMediaType::Tar => DOCKER_LAYER,
        LayerMediaType::TarGzip => DOCKER_LAYER_GZIP,
        LayerMediaType::TarZstd => OCI_LAYER_ZSTD,
    }
}

impl CacheRecordFile {
    /// Descriptors of the record's distinct layers, with OCI media types or Docker's: the
    /// layers of the manifest (or index) that holds the record.
    pub fn layer_descriptors(&self, oci_media_types: bool) -> Vec<Descriptor> {
        let name = if oci_media_types {
            media_type_str
        } else {
            docker_media_type_str
        };
        let mut seen = std::collections::HashSet::new();
        self.blobs()
            .into_iter()
            .filter(|(_, digest, _)| seen.insert(*digest))
            .map(|(m, digest, size)| Descriptor::new(name(m), digest, size))
            .collect()
    }

    /// Every blob the record names (media type, digest, size): the layers' in first-use
    /// order, then the cache mounts' in id order. A digest may repeat.
    pub fn blobs(&self) -> Vec<(LayerMediaType, Digest, u64)> {
        let layers = self
            .layers()
            .into_iter()
            .map(|l| (l.media_type, l.digest, l.size));
        let mounts = self
            .cache_mounts
            .values()
            .map(|m| (m.media_type, m.digest, m.size));
        layers.chain(mounts).collect()
    }

    /// The layers of every step, each distinct layer once (in first-use order).
    pub fn layers(&self) -> Vec<&CacheLayer> {
        let mut seen = std::collections::HashSet::new();
        self.steps
            .values()
            .flatten()
            .filter(|l| seen.insert(l.snapshot))
            .collect()
    }

    /// The record's JSON, stamped with [`RECORD_VERSION`] and `key_version`.
    pub fn encode(&self, key_version: &str) -> Vec<u8> {
        let layers = self.layers();
        let index: BTreeMap<SnapshotId, usize> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.snapshot, i))
            .collect();
        let encoded = Encoded {
            version: RECORD_VERSION,
            key_version: key_version.to_string(),
            layers: layers
                .iter()
                .map(|l| EncodedLayer {
                    media_type: l.media_type.into(),
                    digest: l.digest,
                    size: l.size,
                    diff_id: l.diff_id,
                    snapshot: l.snapshot.0,
                })
                .collect(),
            steps: self
                .steps
                .iter()
                .map(|(key, ls)| EncodedStep {
                    key: *key,
                    layers: ls.iter().map(|l| index[&l.snapshot]).collect(),
                })
                .collect(),
            cache_mounts: self
                .cache_mounts
                .iter()
                .map(|(id, m)| EncodedMount {
                    id: id.clone(),
                    media_type: m.media_type.into(),
                    digest: m.digest,
                    size: m.size,
                    diff_id: m.diff_id,
                })
                .collect(),
        };
        // Plain structs of strings and numbers: serialising cannot fail.
        serde_json::to_vec(&encoded).unwrap_or_default()
    }

    /// Reads a record written for `key_version`; one of another version is an error.
    pub fn decode(bytes: &[u8], key_version: &str) -> Result<Self, RecordError> {
        let head: VersionOnly = serde_json::from_slice(bytes).map_err(RecordError::Json)?;
        if head.version != RECORD_VERSION {
            return Err(RecordError::Version {
                found: head.version,
                expected: RECORD_VERSION,
            });
        }
        if head.key_version != key_version {
            return Err(RecordError::KeyVersion {
                found: head.key_version,
                expected: key_version.to_string(),
            });
        }
        let encoded: Encoded = serde_json::from_slice(bytes).map_err(RecordError::Json)?;
        let layers: Vec<CacheLayer> = encoded
            .layers
            .into_iter()
            .map(|l| CacheLayer {
                snapshot: SnapshotId(l.snapshot),
                digest: l.digest,
                size: l.size,
                media_type: l.media_type.into(),
                diff_id: l.diff_id,
            })
            .collect();
        let mut steps = BTreeMap::new();
        for step in encoded.steps {
            let chain = step
                .layers
                .iter()
                .map(|&index| {
                    layers.get(index).cloned().ok_or(RecordError::LayerIndex {
                        key: step.key,
                        index,
                        count: layers.len(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            steps.insert(step.key, chain);
        }
        let cache_mounts = encoded
            .cache_mounts
            .into_iter()
            .map(|m| {
                let blob = CacheMountBlob {
                    media_type: m.media_type.into(),
                    digest: m.digest,
                    size: m.size,
                    diff_id: m.diff_id,
                };
                (m.id, blob)
            })
            .collect();
        Ok(CacheRecordFile {
            steps,
            cache_mounts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KV: &str = "rbuild-cache-key-v3";

    fn layer(n: &[u8], media_type: LayerMediaType) -> CacheLayer {
        CacheLayer {
            snapshot: SnapshotId(Digest::of(n)),
            digest: Digest::of(&[n, b"blob"].concat()),
            size: n.len() as u64,
            media_type,
            diff_id: Digest::of(&[n, b"tar"].concat()),
        }
    }

    fn sample() -> CacheRecordFile {
        let base = layer(b"base", LayerMediaType::TarGzip);
        let copy = layer(b"copy", LayerMediaType::Tar);
        let run = layer(b"run", LayerMediaType::TarZstd);
        let mut steps = BTreeMap::new();
        steps.insert(Digest::of(b"k-from"), vec![base.clone()]);
        steps.insert(Digest::of(b"k-copy"), vec![base.clone(), copy.clone()]);
        steps.insert(Digest::of(b"k-run"), vec![base, copy, run]);
        CacheRecordFile {
            steps,
            cache_mounts: BTreeMap::new(),
        }
    }

    fn mount_blob(n: &[u8]) -> CacheMountBlob {
        CacheMountBlob {
            media_type: LayerMediaType::TarGzip,
            digest: Digest::of(&[n, b"blob"].concat()),
            size: 42,
            diff_id: Digest::of(&[n, b"tar"].concat()),
        }
    }

    #[test]
    fn cache_mounts_round_trip_and_are_listed_as_blobs() {
        let mut record = sample();
        record.cache_mounts.insert("pip".into(), mount_blob(b"pip"));
        record.cache_mounts.insert("apt".into(), mount_blob(b"apt"));
        let bytes = record.encode(KV);
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["version"], 2);
        let mounts = json["cacheMounts"].as_array().unwrap();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0]["id"], "apt");
        assert_eq!(mounts[1]["mediaType"], OCI_LAYER_GZIP);
        assert_eq!(mounts[1]["diffID"], mount_blob(b"pip").diff_id.to_string());
        assert_eq!(CacheRecordFile::decode(&bytes, KV).unwrap(), record);
        let descriptors = record.layer_descriptors(true);
        assert_eq!(descriptors.len(), 5, "3 layers, then 2 mounts");
        assert_eq!(descriptors[4].digest, mount_blob(b"pip").digest);
        // The same blob twice (an empty mount and an empty layer) is one descriptor.
        let mut twice = record.clone();
        twice.cache_mounts.insert(
            "again".into(),
            CacheMountBlob {
                media_type: LayerMediaType::TarGzip,
                ..mount_blob(b"pip")
            },
        );
        assert_eq!(twice.layer_descriptors(true).len(), 5);
        assert_eq!(twice.blobs().len(), 6);
    }

    #[test]
    fn a_record_without_mounts_has_no_cache_mounts_field() {
        let json: serde_json::Value = serde_json::from_slice(&sample().encode(KV)).unwrap();
        assert!(json.get("cacheMounts").is_none(), "{json}");
    }

    #[test]
    fn a_version_1_record_is_refused_with_the_version_message() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().encode(KV)).unwrap();
        json["version"] = 1.into();
        let err = CacheRecordFile::decode(json.to_string().as_bytes(), KV).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::Version {
                    found: 1,
                    expected: 2
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "the cache record has version 1, this rbuild reads version 2"
        );
    }

    #[test]
    fn round_trips_and_lists_each_layer_once() {
        let record = sample();
        let bytes = record.encode(KV);
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["version"], 2);
        assert_eq!(json["keyVersion"], KV);
        assert_eq!(json["layers"].as_array().unwrap().len(), 3);
        assert_eq!(json["layers"][0]["mediaType"], OCI_LAYER_GZIP);
        assert_eq!(CacheRecordFile::decode(&bytes, KV).unwrap(), record);
    }

    #[test]
    fn a_record_of_another_version_is_refused_not_misread() {
        let bytes = sample().encode(KV);
        let err = CacheRecordFile::decode(&bytes, "rbuild-cache-key-v4").unwrap_err();
        assert!(matches!(err, RecordError::KeyVersion { .. }), "{err}");

        let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        json["version"] = 3.into();
        // A future version may change any field: only its version is read.
        json["layers"] = "something else".into();
        let err = CacheRecordFile::decode(json.to_string().as_bytes(), KV).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::Version {
                    found: 3,
                    expected: 2
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn garbled_records_and_bad_indices_are_errors() {
        for bad in [
            &b"not json"[..],
            b"{}",
            br#"{"version":2,"keyVersion":"x"}"#,
        ] {
            assert!(CacheRecordFile::decode(bad, "x").is_err());
        }
        let mut json: serde_json::Value = serde_json::from_slice(&sample().encode(KV)).unwrap();
        json["steps"][0]["layers"][0] = 9.into();
        let err = CacheRecordFile::decode(json.to_string().as_bytes(), KV).unwrap_err();
        assert!(
            matches!(err, RecordError::LayerIndex { index: 9, .. }),
            "{err}"
        );
    }

    #[test]
    fn unknown_media_types_are_refused() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().encode(KV)).unwrap();
        json["layers"][0]["mediaType"] = "application/x-other".into();
        let err = CacheRecordFile::decode(json.to_string().as_bytes(), KV).unwrap_err();
        assert!(matches!(err, RecordError::Json(_)), "{err}");
    }
}
