//! Selective garbage collection ([`Store::prune`]) and the detailed usage report
//! ([`Store::usage_detail`]).
//!
//! Rules of [`Store::prune`]:
//! - **Candidates** are cache records (all of them, or with `until` only those not used for
//!   that long), least recently used first. With `keep_storage`, candidates are dropped only
//!   until the store is no bigger than the limit; otherwise all of them are dropped.
//! - A **snapshot goes** when no remaining record uses it, no tagged image uses it (by id or by
//!   its recorded diff_id), and it was built here (it is the top layer of a record with its
//!   own key) — or, with `all`, whatever its origin.
//! - **Logs** follow the records: without filters all build logs go; with `until`, those of
//!   builds older than that; with `keep_storage`, the oldest go first while the store is over
//!   the limit, except the newest build's.
//! - `all` without filters is [`Store::prune_all`] (which also removes unreferenced blobs).
//!   Blobs are otherwise kept: they are content of images, not build cache.
//!
//! The index is updated before files are removed, so a crash leaves only unreferenced files.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rbuild_types::Digest;
use redb::TableError;

use crate::error::CacheError;
use crate::fsutil;
use crate::index::{idx_err, CacheRecord, LAYERS};
use crate::prune::{DiskUsage, PruneReport};
use crate::store::Store;
use crate::SnapshotId;

/// What [`Store::prune`] removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Also base-image layers and (without filters) unreferenced blobs.
    pub all: bool,
    /// Only what has not been used for this long.
    pub until: Option<Duration>,
    /// Stop once the store uses at most this many bytes.
    pub keep_storage: Option<u64>,
    /// "Now", in seconds since the Unix epoch (a parameter so tests can move time).
    pub now_unix: u64,
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

/// Whether `rec` (stored under `key`) made its own top layer.
fn built_layer(key: &Digest, rec: &CacheRecord) -> Option<SnapshotId> {
    rec.layers.last().filter(|l| l.0 == *key).copied()
}

impl Store {
    /// Removes build cache as [`PruneOptions`] says (see the module docs). Needs the store to
    /// itself: fails with [`CacheError::Busy`] if another process has it open.
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport, CacheError> {
        if opts.all && opts.until.is_none() && opts.keep_storage.is_none() {
            return self.lock.with_exclusive(&self.root, || {
                let mut report = self.prune_locked()?;
                self.prune_logs(&mut report, |_| true)?;
                Ok(report)
            });
        }
        self.lock
            .with_exclusive(&self.root, || self.prune_selective(opts))
    }

    fn prune_selective(&self, opts: &PruneOptions) -> Result<PruneReport, CacheError> {
        let mut report = PruneReport::default();
        let protected = self.tagged_snapshots()?;
        let mut records = self.cache_records()?;
        records.sort_by_key(|(k, r)| (r.last_activity(), *k));
        let built: HashSet<SnapshotId> = records
            .iter()
            .filter_map(|(k, r)| built_layer(k, r))
            .collect();
        let mut refs: HashMap<SnapshotId, usize> = HashMap::new();
        for (_, r) in &records {
            for l in &r.layers {
                *refs.entry(*l).or_default() += 1;
            }
        }
        let cutoff = opts
            .until
            .map(|d| opts.now_unix.saturating_sub(d.as_secs()));
        let mut usage = match opts.keep_storage {
            Some(_) => self.disk_usage()?.total(),
            None => 0,
        };
        let over = |usage: u64| match opts.keep_storage {
            Some(limit) => usage > limit,
            None => true,
        };

        // Logs first: they are the cheapest thing to lose.
        let newest_log = self.build_logs()?.last().map(|l| l.dir.clone());
        self.prune_logs(&mut report, |l| match (cutoff, opts.keep_storage) {
            (Some(c), _) => l.started_unix < c,
            (None, Some(_)) => {
                let go = over(usage) && Some(&l.dir) != newest_log.as_ref();
                if go {
                    usage = usage.saturating_sub(fsutil::tree_size(&l.dir).unwrap_or(0));
                }
                go
            }
            (None, None) => true,
        })?;

        let mut drop_keys = Vec::new();
        let mut drop_snaps = Vec::new();
        for (key, rec) in &records {
            if cutoff.is_some_and(|c| rec.last_activity() >= c) {
                continue;
            }
            if !over(usage) {
                break;
            }
            drop_keys.push(*key);
            for l in &rec.layers {
                let n = refs.entry(*l).or_default();
                *n = n.saturating_sub(1);
                let removable = *n == 0
                    && !protected.contains(l)
                    && (opts.all || built.contains(l))
                    && self.snapshot_path(l).is_some();
                if removable {
                    if opts.keep_storage.is_some() {
                        let size = self
                            .snapshot_path(l)
                            .map_or(Ok(0), |p| fsutil::tree_size(&p))?;
                        usage = usage.saturating_sub(size);
                    }
                    drop_snaps.push(*l);
                }
            }
        }
        report.cache_records = self.remove_records(&drop_keys)?;
        self.forget_layer_info(&drop_snaps)?;
        for id in drop_snaps {
            if let Some(path) = self.snapshot_path(&id) {
                report.bytes += fsutil::tree_size(&path)?;
                fsutil::remove_tree(&path)?;
                report.snapshots += 1;
            }
        }
        Ok(report)
    }

    /// Removes the build log directories `go` picks, counting them in `report`.
    fn prune_logs(
        &self,
        report: &mut PruneReport,
        mut go: impl FnMut(&crate::BuildLogs) -> bool,
    ) -> Result<(), CacheError> {
        for logs in self.build_logs()? {
            if go(&logs) {
                report.bytes += fsutil::tree_size(&logs.dir)?;
                fsutil::remove_tree(&logs.dir)?;
                report.logs += 1;
            }
        }
        Ok(())
    }

    /// Snapshots that tagged images use, by id or by recorded diff_id.
    fn tagged_snapshots(&self) -> Result<HashSet<SnapshotId>, CacheError> {
        let roots = self.root_diff_ids()?;
        let mut out = HashSet::new();
        for dir in fsutil::list_dir(&self.snapshots_dir)? {
            let Some(id) = crate::prune::digest_of_name(&dir) else {
                continue;
            };
            let by_info = self
                .layer_info(&SnapshotId(id))?
                .is_some_and(|i| roots.contains(&i.diff_id));
            if roots.contains(&id) || by_info {
                out.insert(SnapshotId(id));
            }
        }
        Ok(out)
    }

    pub(crate) fn forget_layer_info(&self, ids: &[SnapshotId]) -> Result<(), CacheError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            {
                let mut t = match txn.open_table(LAYERS) {
                    Ok(t) => t,
                    Err(TableError::TableDoesNotExist(_)) => return Ok(()),
                    Err(e) => return Err(idx_err("open table", p)(e)),
                };
                for id in ids {
                    t.remove(id.0.as_bytes().as_slice())
                        .map_err(idx_err("remove", p))?;
                }
            }
            txn.commit().map_err(idx_err("commit", p))
        })
    }

    /// Usage per kind, and every cache record with the space its layer takes.
    pub fn usage_detail(&self) -> Result<UsageDetail, CacheError> {
        let totals = self.disk_usage()?;
        let records = self.cache_records()?;
        let mut sizes: HashMap<SnapshotId, u64> = HashMap::new();
        let mut size_of = |id: &SnapshotId| -> Result<u64, CacheError> {
            if let Some(s) = sizes.get(id) {
                return Ok(*s);
            }
            let s = match self.snapshot_path(id) {
                Some(p) => fsutil::tree_size(&p)?,
                None => 0,
            };
            sizes.insert(*id, s);
            Ok(s)
        };
        let mut out = Vec::with_capacity(records.len());
        let mut built = HashSet::new();
        for (key, rec) in &records {
            let size = match built_layer(key, rec) {
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
