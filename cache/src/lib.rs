//! rbuild's store: content-addressed blobs, unpacked layer snapshots, the cache index and
//! image tags, under one root directory (`RBUILD_ROOT`).
//!
//! # Architecture
//!
//! ```text
//! <root>/
//!   blobs/sha256/<hex>   blobs (layers, configs, manifests)          module `blobs`
//!   snapshots/<hex>/     unpacked layers, overlayfs upper-dir format   module `snapshots`
//!   tmp/                 staging for both; same filesystem            (cleaned on open)
//!   index.redb           cache key -> result, layer info, tags,       module `index`
//!                        resolved references, step inputs (redb)     (+ `records`)
//!   logs/<build>/        every step's full output                     module `logs`
//!   lock, index.lock     flock(2) files                               module `lock`
//! ```
//!
//! | module      | job |
//! |-------------|-----|
//! | `store`     | [`Store::open`], layout, lock acquisition, cleaning stale staging |
//! | `blobs`     | [`BlobWriter`]: stage, hash while writing, verify, fsync, rename |
//! | `snapshots` | [`PreparedSnapshot`]: stage `upper`/`work`, `syncfs`, rename into place; take back one whose step could not be recorded |
//! | `space`     | whether the store's filesystem is full |
//! | `index`     | [`CacheRecord`], [`LayerInfo`], tags, resolved references in redb |
//! | `layer_blobs` | [`LayerBlob`]: diff_id → the (compressed) blob a pulled/loaded layer is stored as |
//! | `db`        | shared, lease-based access to `index.redb` across threads and processes |
//! | `prune`     | [`Store::prune_all`] (tags are the only GC roots), [`Store::disk_usage`] |
//! | `gc`        | [`Store::prune`] (`--filter until`, `--keep-storage`, LRU), [`Store::usage_detail`] |
//! | `records`   | listing and stamping cache records; per-step key inputs for `--explain-cache` |
//! | `logs`      | [`BuildLogs`]: one directory of step logs per build |
//! | [`merged`]  | [`MergedView`]: read-only overlayfs semantics over snapshot directories |
//! | [`overlay`] | whiteouts and opaque directories: detect and create |
//! | `cache_mounts` | [`CacheMountLease`]: `RUN --mount=type=cache` directories under `cache-mounts/`, flock-shared |
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
//! 3. **Index writes are transactions.** Every index change is one redb write transaction,
//!    durable when it returns. redb lets one process open the file at a time, so a process
//!    holds it (under `index.lock`) only while it is using it: it lets go after a short idle
//!    time or a maximum hold time, so concurrent builds take turns.
//! 4. **Concurrency.** Every open [`Store`] holds a shared lock on `lock`; two builds can share
//!    a store. `prune_all` needs the lock exclusively and fails with [`CacheError::Busy`]
//!    rather than wait. Equal ids mean equal content, so racing publishers of the same blob
//!    or snapshot both succeed and one copy is kept.
//! 5. **Snapshot ids.** Base-image layers are identified by their diff_id; layers built here by
//!    the cache key of the vertex that made them. A snapshot is never modified once committed.
//!
//! The library never prints; every error names its path, digest or table.

mod blobs;
mod cache_mounts;
mod db;
mod durability;
mod error;
mod fsutil;
mod gc;
mod index;
mod janitor;
mod layer_blobs;
mod lock;
mod logs;
pub mod merged;
pub mod overlay;
mod prune;
mod records;
mod snapshots;
mod space;
mod store;

pub use blobs::BlobWriter;
pub use cache_mounts::{
    CacheMountError, CacheMountLease, CacheMountPrune, CacheMountRequest, CacheMountSharing,
    CacheMountUsage,
};
pub use error::CacheError;
pub use gc::{PruneOptions, RecordUsage, UsageDetail};
pub use index::{CacheRecord, LayerInfo};
pub use layer_blobs::LayerBlob;
pub use logs::BuildLogs;
pub use merged::{MergedEntry, MergedView};
pub use prune::{DiskUsage, PruneReport};
pub use snapshots::PreparedSnapshot;
pub use store::Store;

/// Identifies an unpacked layer in the snapshot store (defined in `rbuild-types`, where the
/// ports can name it too).
pub use rbuild_types::SnapshotId;
