//! What the store's space is used by: totals per part ([`Usage::totals`], `rbuild du`'s
//! summary and GC's `--keep-storage` measure) and per cache record ([`Usage::detail`]).
//! Sizes are apparent bytes of the files.

use std::collections::{HashMap, HashSet};

use rbuild_types::Digest;

use crate::error::CacheError;
use crate::fsutil;
use crate::store::Store;
use crate::SnapshotId;

/// Apparent bytes used by each part of the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub blobs: u64,
    pub snapshots: u64,
    pub index: u64,
    /// Build logs (`logs/`).
    pub logs: u64,
}

impl DiskUsage {
    /// All parts together.
    pub fn total(&self) -> u64 {
        self.blobs + self.snapshots + self.index + self.logs
    }
}

/// One cache record in the usage report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordUsage {
    pub key: Digest,
    /// The step that made it.
    pub name: String,
    /// Bytes of the layer it added (built steps), or of all its layers (base images).
    pub size: u64,
    /// Last use (or creation), seconds since the Unix epoch.
    pub last_used_unix: u64,
}

/// What uses the space, in more detail than [`DiskUsage`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageDetail {
    pub totals: DiskUsage,
    /// Snapshots built by RUN/COPY steps.
    pub built_snapshots: u64,
    /// Every other snapshot (base-image layers).
    pub base_snapshots: u64,
    /// Cache records, largest first.
    pub records: Vec<RecordUsage>,
}

/// The store's space report. Get one with [`Store::usage`].
#[derive(Clone, Copy, Debug)]
pub struct Usage<'a> {
    pub(crate) store: &'a Store,
}

impl Usage<'_> {
    /// Bytes used by blobs, snapshots, the index database and build logs.
    pub fn totals(&self) -> Result<DiskUsage, CacheError> {
        let store = self.store;
        Ok(DiskUsage {
            blobs: fsutil::tree_size(&store.blobs_dir)?,
            snapshots: fsutil::tree_size(&store.snapshots_dir)?,
            index: fsutil::tree_size(store.index.path())?,
            logs: fsutil::tree_size(&store.logs().dir())?,
        })
    }

    /// Usage per kind, and every cache record with the space its layer takes.
    pub fn detail(&self) -> Result<UsageDetail, CacheError> {
        let totals = self.totals()?;
        let records = self.store.index().all()?;
        let snapshots = self.store.snapshots();
        let mut sizes: HashMap<SnapshotId, u64> = HashMap::new();
        let mut size_of = |id: &SnapshotId| -> Result<u64, CacheError> {
            if let Some(s) = sizes.get(id) {
                return Ok(*s);
            }
            let s = match snapshots.path(id) {
                Some(p) => fsutil::tree_size(&p)?,
                None => 0,
            };
            sizes.insert(*id, s);
            Ok(s)
        };
        let mut out = Vec::with_capacity(records.len());
        let mut built = HashSet::new();
        for (key, rec) in &records {
            let size = match rec.built_layer(key) {
                Some(l) => {
                    built.insert(l);
                    size_of(&l)?
                }
                None => rec
                    .layers
                    .iter()
                    .map(&mut size_of)
                    .sum::<Result<u64, _>>()?,
            };
            out.push(RecordUsage {
                key: *key,
                name: rec.name.clone(),
                size,
                last_used_unix: rec.last_activity(),
            });
        }
        out.sort_by(|a, b| b.size.cmp(&a.size).then(a.key.cmp(&b.key)));
        let built_snapshots = built
            .iter()
            .map(|l| sizes.get(l).copied().unwrap_or(0))
            .sum::<u64>();
        Ok(UsageDetail {
            base_snapshots: totals.snapshots.saturating_sub(built_snapshots),
            built_snapshots,
            totals,
            records: out,
        })
    }
}
