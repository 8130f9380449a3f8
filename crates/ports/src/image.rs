//! The [`ImageSource`] port: base images resolved by reference to a manifest and its config,
//! then made available as unpacked snapshots. Implemented by `rbuild-oci` (local store, then
//! registries).

use rbuild_graph::ImageConfig;
use rbuild_types::{Digest, ImageRef, Platform, SnapshotId};

/// A base image, resolved to a manifest.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    pub reference: ImageRef,
    /// Digest of the platform-specific manifest. The cache key of an image vertex.
    pub manifest_digest: Digest,
    pub config: ImageConfig,
}

/// Errors of an image source; adapters box their own error types in.
#[derive(Debug, thiserror::Error)]
#[error("{reference}: {source}")]
pub struct SourceError {
    pub reference: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Base images: resolved by reference, then made available as unpacked snapshots.
pub trait ImageSource: Send + Sync {
    /// Resolves `reference` for `platform` to a manifest and its config (local store first,
    /// then registries). Blocking.
    fn resolve(
        &self,
        reference: &ImageRef,
        platform: &Platform,
    ) -> Result<ResolvedImage, SourceError>;
    /// Makes sure every layer of the resolved image is in the store as a snapshot; returns the
    /// snapshot ids, bottom first. Blocking.
    fn pull(&self, image: &ResolvedImage) -> Result<Vec<SnapshotId>, SourceError>;
}
