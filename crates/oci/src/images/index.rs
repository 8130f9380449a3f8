//! Multi-platform images: an OCI image index of one stored manifest per platform, as a
//! multi-platform build commits it, and its distribution form (each child's distribution
//! manifest, joined in an OCI index, or a Docker manifest list with `oci-mediatypes=false`).
//!
//! Invariant: an index's children are stored images (manifest, config; layers stored or lazy),
//! listed in the order of the build's `--platform` list, each with its platform, then the
//! attestation manifests of those images (see [`crate::attest`]), if any, in the same order.

use std::collections::BTreeMap;

use rbuild_cache::Store;
use rbuild_types::{Digest, Platform};

use super::distribute::{distribution_image, DistImage, DistOptions};
use crate::attest;
use crate::manifest::{
    Descriptor, ImageIndex, DOCKER_LIST, OCI_INDEX, OCI_LAYER_ZSTD, OCI_MANIFEST,
};
use crate::registry::manifest::{classify, ManifestKind};
use crate::OciError;

/// An index in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredIndex {
    pub digest: Digest,
    pub size: u64,
}

/// Stores the OCI index of `images` (each a platform and its stored manifest's digest and
/// size), in order, then the `attestations` entries (made by
/// [`crate::attest::commit_attestations`]), with `annotations` (`--annotation index:…`; none
/// when empty).
pub fn commit_index(
    store: &Store,
    images: &[(Platform, Digest, u64)],
    attestations: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Result<StoredIndex, OciError> {
    let manifests = images
        .iter()
        .map(|(platform, digest, size)| Descriptor {
            platform: Some(platform.clone()),
            ..Descriptor::new(OCI_MANIFEST, *digest, *size)
        })
        .chain(attestations.iter().cloned())
        .collect();
    let mut index = ImageIndex::oci(manifests);
    index.annotations = (!annotations.is_empty()).then(|| annotations.clone());
    let bytes = index.to_json();
    let digest = store
        .blobs()
        .put(&bytes)
        .map_err(OciError::store("write image index"))?;
    Ok(StoredIndex {
        digest,
        size: bytes.len() as u64,
    })
}

/// The stored index `digest`, or `None` when that blob is an image manifest.
pub fn load_index(store: &Store, digest: &Digest) -> Result<Option<ImageIndex>, OciError> {
    let bytes = store
        .blobs()
        .read(digest)
        .map_err(OciError::store(format!("read manifest {digest}")))?;
    match classify(None, &bytes).map(|(kind, _)| kind) {
        Some(ManifestKind::Index) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| OciError::Json {
                    what: "image index",
                    context: digest.to_string(),
                    source,
                })
        }
        _ => Ok(None),
    }
}

/// The distribution form of a stored index: each child's, and the index joining them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistIndex {
    pub digest: Digest,
    pub size: u64,
    pub media_type: &'static str,
    /// Each child, in order: its platform, the stored manifest and its distribution form
    /// (images first, then attestation manifests, whose platform is `unknown/unknown`).
    pub children: Vec<(Option<Platform>, Digest, DistImage)>,
}

impl DistIndex {
    /// A descriptor of the index.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type, self.digest, self.size)
    }
}

/// Writes (into the store) the distribution form of stored index `index`, whose children
/// are stored image manifests and attestation manifests of them. An attestation is
/// rewritten to name its image's distribution manifest (see [`crate::attest`]); attestations
/// need OCI media types, as in BuildKit.
pub fn distribution_index(
    store: &Store,
    index: &ImageIndex,
    options: &DistOptions,
) -> Result<DistIndex, OciError> {
    let (attestations, images): (Vec<&Descriptor>, Vec<&Descriptor>) = index
        .manifests
        .iter()
        .partition(|c| attest::is_attestation(c));
    if !attestations.is_empty() && !options.oci_media_types {
        return Err(OciError::AttestationsNeedOciTypes);
    }
    let mut children = Vec::with_capacity(index.manifests.len());
    for child in images {
        let dist = distribution_image(store, &child.digest, options)?;
        children.push((child.platform.clone(), child.digest, dist));
    }
    let mut attestation_entries = Vec::with_capacity(attestations.len());
    for entry in attestations {
        let stored_subject = attest::reference_digest(entry)?;
        let dist_subject = children
            .iter()
            .find(|(_, stored, _)| *stored == stored_subject)
            .map(|(_, _, d)| d.manifest_digest)
            .ok_or_else(|| OciError::Invalid {
                what: "attestation subject (not an image of the index)",
                context: format!("attestation manifest {}", entry.digest),
                value: stored_subject.to_string(),
            })?;
        let dist = attest::distribution_attestation(store, entry, &dist_subject)?;
        attestation_entries.push((entry.digest, dist));
    }
    // Docker's list cannot name a zstd layer (as for a manifest, OCI types then).
    let zstd = children.iter().any(|(_, _, d)| {
        d.manifest
            .layers
            .iter()
            .any(|l| l.media_type == OCI_LAYER_ZSTD)
    });
    let oci = options.oci_media_types || zstd;
    let manifests = children
        .iter()
        .map(|(platform, _, dist)| Descriptor {
            platform: platform.clone(),
            ..dist.descriptor()
        })
        .chain(attestation_entries.iter().map(|(_, d)| d.clone()))
        .collect();
    let mut out = ImageIndex::oci(manifests);
    out.annotations = index.annotations.clone();
    let media_type = if oci { OCI_INDEX } else { DOCKER_LIST };
    out.media_type = Some(media_type.to_string());
    let bytes = out.to_json();
    let digest = store
        .blobs()
        .put(&bytes)
        .map_err(OciError::store("write distribution index"))?;
    for (stored, entry) in attestation_entries {
        let dist = super::load_manifest(store, &entry.digest)?;
        children.push((
            entry.platform.clone(),
            stored,
            DistImage {
                manifest_digest: entry.digest,
                manifest_size: entry.size,
                media_type: OCI_MANIFEST,
                config_digest: dist.manifest.config.digest,
                manifest: dist.manifest,
            },
        ));
    }
    Ok(DistIndex {
        digest,
        size: bytes.len() as u64,
        media_type,
        children,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::commit_image;
    use rbuild_graph::{HistoryEntry, ImageConfig};

    #[test]
    fn an_index_of_two_platforms_round_trips_and_distributes_as_a_docker_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut images = Vec::new();
        for arch in ["amd64", "arm64"] {
            let platform: Platform = format!("linux/{arch}").parse().unwrap();
            let config = ImageConfig {
                platform: platform.clone(),
                history: vec![HistoryEntry {
                    created: None,
                    created_by: format!("ENV A={arch}"),
                    comment: None,
                    empty_layer: true,
                }],
                ..ImageConfig::default()
            };
            let stored = commit_image(&store, &[], &config, Some(0)).unwrap();
            let size = store.blobs().read(&stored.manifest_digest).unwrap().len() as u64;
            images.push((platform, stored.manifest_digest, size));
        }
        let index = commit_index(&store, &images, &[], &Default::default()).unwrap();
        let loaded = load_index(&store, &index.digest)
            .unwrap()
            .expect("an index");
        assert_eq!(loaded.manifests.len(), 2);
        assert_eq!(
            loaded.manifests[1].platform.as_ref().unwrap().architecture,
            "arm64"
        );
        assert!(load_index(&store, &images[0].1).unwrap().is_none());

        let options = DistOptions {
            oci_media_types: false,
            ..DistOptions::default()
        };
        let dist = distribution_index(&store, &loaded, &options).unwrap();
        assert_eq!(dist.media_type, DOCKER_LIST);
        assert_eq!(dist.children.len(), 2);
        let back = load_index(&store, &dist.digest).unwrap().unwrap();
        assert_eq!(back.manifests[0].digest, dist.children[0].2.manifest_digest);
        assert_eq!(back.manifests[0].platform, Some(images[0].0.clone()));
    }
}
