//! rbuild's store: content-addressed blobs, unpacked layer snapshots, the cache index and
//! image tags, under one root directory (`RBUILD_ROOT`).
//!
//! # Architecture
//!
//! ```text
//! <root>/
//!   blobs/sha256/<hex>   blobs (layers, configs, manifests)           store.blobs()
//!   snapshots/<hex>/     unpacked layers, overlayfs upper-dir format  store.snapshots()
//!   tmp/                 staging for both; same filesystem           (cleaned on open)
//!   index.redb           tables: cache key -> result, step inputs,    store.index(), steps(),
//!                        layer info, tags, resolved references,       layer_info(), tags(),
//!                        layer blobs, blob sources, lazy layers,      resolved(), layer_blobs(),
//!                        repo digests                                 blob_sources(), lazy_layers(),
//!                        (schema in module `tables`)                  repo_digests()
//!   logs/<build>/        every step's full output                    store.logs()
//!   cache-mounts/<id>/   RUN --mount=type=cache directories          store.cache_mounts()
//!   copy-donors/<shape>  per COPY shape: the snapshot its last run    store.copy_donors()
//!                        made and what each file was made from
//!   lock, index.lock     flock(2) files                              module `lock`
//! ```
//!
//! [`Store`] itself only opens a root, holds its locks and its durability journal, and
//! syncs; each role is a small `Copy` type borrowing it, got from an accessor:
//!
//! | accessor → type | module | job |
//! |-----------------|--------|-----|
//! | [`Store::open`], [`Store::sync`] | `store` | layout, lock acquisition, cleaning stale staging |
//! | `blobs()` → [`Blobs`] | `blobs` | has/path/read/put; [`BlobWriter`]: stage, hash while writing, verify, fsync, rename |
//! | `snapshots()` → [`Snapshots`] | `snapshots` | [`PreparedSnapshot`]: stage `upper`/`work`, commit (journaled, renamed into place), replace, retract |
//! | `index()` → [`CacheIndex`] | `index` | table `cache`: [`CacheRecord`] by cache key; lookup, record (with step inputs), list, touch, remove |
//! | `steps()` → [`Steps`] | `steps` | table `steps`: per-step key inputs for `--explain-cache` |
//! | `layer_info()` → [`LayerInfos`] | `layer_info` | table `layer_info`: [`LayerInfo`], a snapshot's diff_id and size |
//! | `tags()` → [`Tags`] | `tags` | table `tags`: image name → manifest, the GC roots |
//! | `resolved()` → [`Resolved`] | `resolved` | table `resolved`: image reference → manifest it resolved to |
//! | `layer_blobs()` → [`LayerBlobs`] | `layer_blobs` | table `layer_blobs`: [`LayerBlob`], diff_id → the (compressed) blob a pulled/loaded layer is stored as |
//! | `blob_sources()` → [`BlobSources`] | `blob_sources` | table `blob_sources`: blob → the registry repositories ([`BlobSource`]) it was pulled from, for cross-repository mounts |
//! | `lazy_layers()` → [`LazyLayers`] | `lazy_layers` | table `lazy_layers`: [`LazyLayer`], snapshot → the blob it is unpacked from when first read (lazy pulls and cache imports) |
//! | `repo_digests()` → [`RepoDigests`] | `repo_digests` | table `repo_digests`: stored manifest → the registry repositories ([`RepoDigest`]) it was pushed to or pulled from, with the digest there (`inspect`'s `RepoDigests`) |
//! | `logs()` → [`Logs`] | `logs` | [`BuildLogs`]: one directory of step logs per build |
//! | `copy_donors()` → [`CopyDonors`] | `copy_donors` | [`Donor`]: the snapshot an earlier run of the same COPY made and its files' stamps, so a COPY whose selection changed in a few files links the rest (checksummed hints, checked file by file) |
//! | `cache_mounts()` → [`CacheMounts`] | `cache_mounts` | [`CacheMountLease`]: `RUN --mount=type=cache` directories, flock-shared |
//! | `gc()` → [`Gc`] | `gc`, `prune`, `roots` | `prune` (`--filter until`, `--keep-storage`, LRU), `prune_all` (tags are the only GC roots) |
//! | `usage()` → [`Usage`] | `usage` | [`DiskUsage`] totals, [`UsageDetail`] per record |
//! | `space()` → [`Space`] | `space` | whether the store's filesystem is full |
//! | – | `tables` | the schema of `index.redb` and the transaction helpers |
//! | – | `db` | shared, lease-based access to `index.redb` across threads and processes |
//! | – | `durability`, `janitor` | the snapshot journal and one sync per handle; deferred staging removal |
//! | [`merged`] | | [`MergedView`]: read-only overlayfs semantics over snapshot directories |
//! | [`overlay`] | | whiteouts and opaque directories: detect and create |
//!
//! # Invariants
//!
//! 1. **Invisible until complete and verified.** A blob appears under `blobs/` only after its
//!    bytes are fsynced and hash to its name (and to the caller's expected digest); a
//!    snapshot appears under `snapshots/` only after its filesystem is synced. Both are
//!    published with a single `rename(2)` from `tmp/`, so a process killed at any instant
//!    leaves either the old state or the new one, plus at most some `tmp/` leftovers.
//! 2. **Stale staging is cleaned, never in use staging.** `tmp/` is emptied on open only when
//!    the opener can take the store lock exclusively (no other process has the store open).
//! 3. **Index writes are transactions.** Every index change is one redb write transaction.
//!    Tags and removals are durable when they return; what a build records step by step
//!    (cache records, step inputs, layer info, resolved references, blob records) is durable
//!    by the next durable write, [`Store::sync`] or the database's closing, whichever comes
//!    first (`tables::Durable`): a crash loses at most those records (cache misses), and
//!    another process always finds them durable. redb lets one process open the file at a time, so a process
//!    holds it (under `index.lock`) only while it is using it: it lets go after a short idle
//!    time or a maximum hold time, so concurrent builds take turns.
//! 4. **Concurrency.** Every open [`Store`] holds a shared lock on `lock`; two builds can share
//!    a store. [`Gc::prune_all`] needs the lock exclusively and fails with [`CacheError::Busy`]
//!    rather than wait. Equal ids mean equal content, so racing publishers of the same blob
//!    or snapshot both succeed and one copy is kept.
//! 5. **Snapshot ids.** Base-image layers are identified by their diff_id; layers built here by
//!    the cache key of the vertex that made them. A snapshot is never modified once committed.
//!
//! The library never prints; every error names its path, digest or table.

mod blob_sources;
mod blobs;
mod cache_mounts;
mod copy_donors;
mod db;
mod durability;
mod error;
mod fsutil;
mod gc;
mod index;
mod janitor;
mod layer_blobs;
mod layer_info;
mod lazy_layers;
mod lock;
mod logs;
pub mod merged;
pub mod overlay;
pub mod placement;
mod prune;
mod repo_digests;
mod resolved;
mod roots;
mod snapshots;
mod space;
mod steps;
mod store;
mod tables;
mod tags;
mod usage;

pub use blob_sources::{BlobSource, BlobSources, MAX_SOURCES as MAX_BLOB_SOURCES};
pub use blobs::{BlobWriter, Blobs};
pub use cache_mounts::{
    CacheMountError, CacheMountLease, CacheMountPrune, CacheMountRequest, CacheMountSharing,
    CacheMountUsage, CacheMounts,
};
pub use copy_donors::{CopyDonors, Donor, DonorFile, MAX_DONOR_FILES};
pub use db::SYNC_WITHIN as INDEX_SYNC_WITHIN;
pub use error::CacheError;
pub use gc::{Gc, PruneOptions};
pub use index::{CacheIndex, CacheRecord};
pub use layer_blobs::{LayerBlob, LayerBlobs};
pub use layer_info::{LayerInfo, LayerInfos};
pub use lazy_layers::{LazyLayer, LazyLayers};
pub use logs::{BuildLogs, Logs};
pub use merged::{MergedEntry, MergedView};
pub use prune::PruneReport;
pub use repo_digests::{RepoDigest, RepoDigests};
pub use resolved::Resolved;
pub use snapshots::{PreparedSnapshot, Snapshots};
pub use space::Space;
pub use steps::Steps;
pub use store::Store;
pub use tags::Tags;
pub use usage::{DiskUsage, RecordUsage, Usage, UsageDetail};

/// Identifies an unpacked layer in the snapshot store (defined in `rbuild-types`, where the
/// ports can name it too).
pub use rbuild_types::SnapshotId;
