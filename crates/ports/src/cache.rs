//! The [`CacheExchange`] port: build cache shared between stores (CI runners) through
//! `--cache-from` / `--cache-to`. Shaped by its two consumers:
//!
//! - the solver, when its own cache index misses a key, asks [`CacheExchange::lookup`]
//!   "is there an imported result for this key?" (its layers' descriptors, bottom first) and
//!   then [`CacheExchange::import`]s them: the layers become snapshots of the store, lazily
//!   (known by their blobs; the `ImageSource` port unpacks them when a step reads them), and
//!   the step is CACHED;
//! - the builder, after a build, [`CacheExchange::export`]s "these keys → these layers" (every
//!   solved step, and which layers the final image holds, so that `mode=min` can keep only
//!   those and every layer is the same blob as the image's), and with `cache-mounts=true` the
//!   `RUN --mount=type=cache` directories it chose ([`CacheExport::cache_mounts`]);
//! - the solver again, when a RUN leases a cache mount that its store does not have yet: it
//!   asks [`CacheExchange::seed_cache_mount`] to fill the new directory with the imported
//!   contents of that mount (`--cache-from …,cache-mounts=true`), if any.
//!
//! Implemented by `rbuild-oci` (`type=local`: an OCI layout directory; `type=registry`: a
//! reference in a registry; `type=inline`: an image's config). The record format lives there;
//! this module only names what crosses the boundary.

use std::path::{Path, PathBuf};

use rbuild_types::{Digest, SnapshotId};

/// How a cached layer blob is encoded (the OCI layer media types; Docker's equivalents map here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerMediaType {
    /// `application/vnd.oci.image.layer.v1.tar`
    Tar,
    /// `application/vnd.oci.image.layer.v1.tar+gzip`
    TarGzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd`
    TarZstd,
}

/// One layer of an imported or exported result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheLayer {
    /// The snapshot the layer is (or becomes, when imported) in the store: a step's own layer
    /// is named by the step's key, a base image's by its diff_id.
    pub snapshot: SnapshotId,
    /// The blob: its digest, size and media type.
    pub digest: Digest,
    pub size: u64,
    pub media_type: LayerMediaType,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// A solved step as the builder hands it to [`CacheExchange::export`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolvedStep {
    /// The step's cache key (`rbuild-solver`'s `keys.rs`).
    pub key: Digest,
    /// Its result: its filesystem as snapshots, bottom first.
    pub layers: Vec<SnapshotId>,
}

/// One final image of a build (a multi-platform build has one per platform).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheImage {
    /// Its layers (snapshots, bottom first) …
    pub layers: Vec<SnapshotId>,
    /// … and the manifest they were committed as (in the store).
    pub manifest: Digest,
}

/// What a build produced, for [`CacheExchange::export`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheExport {
    /// Every step that has layers, in the order they were solved.
    pub steps: Vec<SolvedStep>,
    /// The final images (one per platform), whose blobs the cache reuses.
    pub images: Vec<CacheImage>,
    /// The cache mounts to export with the steps (`cache-mounts=true`); empty otherwise.
    pub cache_mounts: Vec<CacheMountExport>,
}

/// A `RUN --mount=type=cache` directory to export, as the builder hands it over (it holds the
/// mount for reading while the export runs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheMountExport {
    /// The cache id (`id=`, or the target when none was given): what names the mount.
    pub id: String,
    /// Its directory in the store.
    pub dir: PathBuf,
}

/// Why a cache exchange failed; adapters box their own error types in.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct CacheExchangeError {
    /// What was being done, e.g. "import layer sha256:…" or "export to /ci/cache".
    pub what: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Build cache imported from, and exported to, somewhere outside the store.
pub trait CacheExchange: Send + Sync {
    /// The imported result of `key`, if any: its layers, bottom first. Cheap (no I/O).
    fn lookup(&self, key: &Digest) -> Option<Vec<CacheLayer>>;
    /// Makes `layers` snapshots of the store (each under its `snapshot` name), skipping those
    /// already there: recorded as lazy layers (`rbuild_cache::LazyLayers`) that
    /// `ImageSource::unpack` downloads and unpacks when something reads them. Returns their
    /// ids, bottom first. Blocking.
    fn import(&self, layers: &[CacheLayer]) -> Result<Vec<SnapshotId>, CacheExchangeError>;
    /// Writes the cache of a finished build to this exchange's destination. Blocking.
    fn export(&self, build: &CacheExport) -> Result<(), CacheExchangeError>;
    /// Fills `dir` (a new, empty directory the store publishes as cache mount `id` once this
    /// returns) with the imported contents of mount `id`; `Ok(false)` when nothing was
    /// imported for it, `dir` left as it was. Blocking (it may download). The default has
    /// nothing to seed with.
    fn seed_cache_mount(&self, id: &str, dir: &Path) -> Result<bool, CacheExchangeError> {
        let _ = (id, dir);
        Ok(false)
    }
}
