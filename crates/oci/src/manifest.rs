//! The one model of OCI image manifests, indexes and descriptors (the Docker v2 schema 2
//! manifest and manifest list parse into the same types), used for the local store, layouts,
//! archives and registries alike, plus the media types rbuild writes and reads.

use std::collections::BTreeMap;

use rbuild_cache::LayerBlob;
use rbuild_types::{Digest, Platform};
use serde::{Deserialize, Serialize};

use crate::compress::Compression;
use crate::OciError;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Annotation carrying the tag of an image in an OCI layout's index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation carrying the full image name (containerd, BuildKit).
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// A content descriptor. Invariant: `digest` and `size` describe the referenced bytes exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            annotations: None,
            platform: None,
        }
    }

    /// This layer's record in the store's `layer_blobs` table: the blob it is stored as.
    pub fn layer_blob(&self) -> LayerBlob {
        LayerBlob {
            digest: self.digest,
            media_type: self.media_type.clone(),
            size: self.size,
        }
    }
}

/// An image manifest (OCI, or Docker v2 schema 2 which has the same shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "schemaVersion", default)]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageManifest {
    /// A new OCI manifest.
    pub fn oci(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_string()),
            config,
            layers,
            annotations: None,
        }
    }

    /// Parses a manifest; `context` (e.g. its digest) goes into the error.
    pub fn parse(bytes: &[u8], context: &str) -> Result<Self, OciError> {
        let m: ImageManifest = serde_json::from_slice(bytes).map_err(|source| OciError::Json {
            what: "image manifest",
            context: context.to_string(),
            source,
        })?;
        if m.schema_version != 2 {
            return Err(OciError::Invalid {
                what: "manifest schemaVersion",
                context: context.to_string(),
                value: m.schema_version.to_string(),
            });
        }
        Ok(m)
    }

    /// Canonical JSON bytes (field order fixed, no whitespace).
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain structs of strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// An image index (the `index.json` of an OCI layout, or a multi-platform list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIndex {
    #[serde(rename = "schemaVersion", default)]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageIndex {
    pub fn oci(manifests: Vec<Descriptor>) -> Self {
        ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests,
            annotations: None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// How a layer with this media type is compressed, or `None` if it is not a layer type we know.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER | DOCKER_LAYER => Some(Compression::None),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(Compression::Gzip),
        OCI_LAYER_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// The OCI layer media type for a compression.
pub fn oci_layer_type(c: Compression) -> &'static str {
    match c {
        Compression::None => OCI_LAYER,
        Compression::Gzip => OCI_LAYER_GZIP,
        Compression::Zstd => OCI_LAYER_ZSTD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_manifest_and_round_trips_oci() {
        let d = Digest::of(b"c");
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"{DOCKER_CONFIG}","size":3,"digest":"{d}"}},
            "layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","size":10,"digest":"{d}"}}]}}"#
        );
        let m = ImageManifest::parse(docker.as_bytes(), "test").unwrap();
        assert_eq!(
            layer_compression(&m.layers[0].media_type),
            Some(Compression::Gzip)
        );
        let oci = ImageManifest::oci(m.config.clone(), m.layers.clone());
        assert_eq!(ImageManifest::parse(&oci.to_json(), "x").unwrap(), oci);
        assert!(ImageManifest::parse(b"{}", "bad").is_err());
    }
}
