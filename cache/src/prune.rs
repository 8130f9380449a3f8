//! `prune --all` without filters ([`crate::Gc::prune_all`]): garbage collection with tags as
//! the only roots (module `roots`).
//!
//! Every snapshot and blob not reachable from a tag goes, and the cache index is emptied;
//! layer-blob, blob-source and repo-digest records of removed blobs are dropped. The index is updated first, so a crash
//! half-way leaves only unreferenced files, which the next prune removes.

use std::collections::HashSet;

use rbuild_types::Digest;

use crate::error::CacheError;
use crate::fsutil;
use crate::layer_blobs::LayerBlob;
use crate::lazy_layers::LazyLayer;
use crate::roots::{digest_of_name, Roots};
use crate::store::{clean_tmp, Store};
use crate::tables::{
    self, idx_err, BLOB_SOURCES, CACHE, LAYER_BLOBS, LAYER_INFO, LAZY_LAYERS, REPO_DIGESTS,
    RESOLVED, STEPS,
};
use crate::SnapshotId;

/// What a prune removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Cache index records dropped.
    pub cache_records: u64,
    /// Snapshot directories removed.
    pub snapshots: u64,
    /// Blobs removed.
    pub blobs: u64,
    /// Build log directories removed.
    pub logs: u64,
    /// Apparent bytes freed by removed snapshots, blobs and logs.
    pub bytes: u64,
}

impl std::fmt::Display for PruneReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "removed {} blobs, {} snapshots, {} cache records and {} build logs; {} bytes freed",
            self.blobs, self.snapshots, self.cache_records, self.logs, self.bytes
        )
    }
}

/// Drops the cache index and every snapshot and blob not reachable from a tag. The caller
/// holds the store lock exclusively, and no other thread uses the same `Store`.
pub(crate) fn unreachable(store: &Store) -> Result<PruneReport, CacheError> {
    // This handle's journal must not look like a dead process's to `clean_tmp`.
    store.sync()?;
    let roots = Roots::of(store)?;
    let mut report = PruneReport::default();

    // Snapshots to keep, decided before touching the index (layer info is needed).
    let keep_snapshots = roots.snapshots(store)?;

    report.cache_records = prune_index(store, &roots, &keep_snapshots)?;

    for dir in fsutil::list_dir(&store.snapshots_dir)? {
        if digest_of_name(&dir).is_some_and(|id| keep_snapshots.contains(&SnapshotId(id))) {
            continue;
        }
        report.bytes += fsutil::tree_size(&dir)?;
        fsutil::remove_tree(&dir)?;
        report.snapshots += 1;
    }
    for blob in fsutil::list_dir(&store.blobs_dir)? {
        if digest_of_name(&blob).is_some_and(|d| roots.blobs.contains(&d)) {
            continue;
        }
        report.bytes += fsutil::tree_size(&blob)?;
        fsutil::remove_tree(&blob)?;
        report.blobs += 1;
    }
    clean_tmp(&store.tmp_dir, &store.snapshots_dir)?;
    store
        .copy_donors()
        .retain(|id| store.snapshots().path(id).is_some())?;
    Ok(report)
}

/// Empties the cache and steps tables, and drops layer info and resolved references that
/// point at what is about to be removed. Returns the number of cache records dropped.
fn prune_index(
    store: &Store,
    roots: &Roots,
    keep_snapshots: &HashSet<SnapshotId>,
) -> Result<u64, CacheError> {
    tables::write_txn(&store.index, tables::Durable::Now, |txn, p| {
        let dropped = {
            let cache = txn.open_table(CACHE).map_err(idx_err("open table", p))?;
            redb::ReadableTableMetadata::len(&cache).map_err(idx_err("count", p))?
        };
        tables::retain(txn, p, CACHE, "clear cache", |_, _| false)?;
        tables::retain(txn, p, LAYER_INFO, "prune layer info", |k, _| {
            <[u8; 32]>::try_from(k)
                .is_ok_and(|b| keep_snapshots.contains(&SnapshotId(Digest::from_bytes(b))))
        })?;
        tables::retain(txn, p, RESOLVED, "prune resolved", |_, v| {
            v.parse::<Digest>().is_ok_and(|d| roots.blobs.contains(&d))
        })?;
        tables::retain(txn, p, LAYER_BLOBS, "prune layer blobs", |_, v| {
            serde_json::from_slice::<LayerBlob>(v).is_ok_and(|b| roots.blobs.contains(&b.digest))
        })?;
        // A lazy layer stays while an image names its blob (a tag's layers stay lazy).
        tables::retain(txn, p, LAZY_LAYERS, "prune lazy layers", |_, v| {
            serde_json::from_slice::<LazyLayer>(v)
                .is_ok_and(|l| roots.blobs.contains(&l.blob.digest))
        })?;
        tables::retain(txn, p, BLOB_SOURCES, "prune blob sources", |k, _| {
            <[u8; 32]>::try_from(k).is_ok_and(|b| roots.blobs.contains(&Digest::from_bytes(b)))
        })?;
        tables::retain(txn, p, REPO_DIGESTS, "prune repo digests", |k, _| {
            <[u8; 32]>::try_from(k).is_ok_and(|b| roots.blobs.contains(&Digest::from_bytes(b)))
        })?;
        // What each step was keyed on only serves `--explain-cache` against cache
        // records, which are all gone.
        tables::retain(txn, p, STEPS, "clear steps", |_, _| false)?;
        Ok(dropped)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DiskUsage;

    #[test]
    fn report_reads_well() {
        let r = PruneReport {
            cache_records: 3,
            snapshots: 2,
            blobs: 1,
            logs: 4,
            bytes: 42,
        };
        assert_eq!(
            r.to_string(),
            "removed 1 blobs, 2 snapshots, 3 cache records and 4 build logs; 42 bytes freed"
        );
        assert_eq!(
            DiskUsage {
                blobs: 1,
                snapshots: 2,
                index: 3,
                logs: 4,
            }
            .total(),
            10
        );
    }
}
