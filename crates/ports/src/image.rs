//! The [`ImageSource`] port: base images resolved by reference to a manifest and its config,
//! their layers named as snapshots (lazily: a layer is downloaded and unpacked only when
//! something reads its files), and lazy snapshots unpacked on demand (a base image's, or a
//! step's imported through the `CacheExchange`). Implemented by `rbuild-oci` (local store,
//! then registries).

use rbuild_graph::ImageConfig;
use rbuild_types::{Digest, ImageRef, Platform, SnapshotId};

/// A base image, resolved to a manifest.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    pub reference: ImageRef,
    /// The platform it was resolved for (an index's entry is picked by it).
    pub platform: Platform,
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
    /// The resolved image's layers as snapshot ids, bottom first. A layer not in the store yet
    /// is recorded as lazy (its blob and where to get it), not downloaded. Blocking.
    fn pull(&self, image: &ResolvedImage) -> Result<Vec<SnapshotId>, SourceError>;
    /// Makes sure each of `layers` is unpacked in the store, downloading and unpacking the
    /// lazy ones; snapshots already there are skipped. Blocking.
    fn unpack(&self, layers: &[SnapshotId]) -> Result<(), SourceError>;
}
