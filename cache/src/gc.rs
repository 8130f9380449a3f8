//! Garbage collection: [`Gc`], `rbuild prune` and the automatic GC after a build.
//!
//! Rules of [`Gc::prune`]:
//! - **Candidates** are cache records (all of them, or with `until` only those not used for
//!   that long), least recently used first. With `keep_storage`, candidates are dropped only
//!   until the store is no bigger than the limit; otherwise all of them are dropped.
//! - A **snapshot goes** when no remaining record uses it, no tagged image uses it (by id or by
//!   its recorded diff_id), and it was built here (it is the top layer of a record with its
//!   own key) — or, with `all`, whatever its origin.
//! - **Logs** follow the records: without filters all build logs go; with `until`, those of
//!   builds older than that; with `keep_storage`, the oldest go first while the store is over
//!   the limit, except the newest build's.
//! - `all` without filters is [`Gc::prune_all`] (module `prune`: it also removes unreferenced
//!   blobs). Blobs are otherwise kept: they are content of images, not build cache.
//!
//! The index is updated before files are removed, so a crash leaves only unreferenced files.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::error::CacheError;
use crate::fsutil;
use crate::logs::BuildLogs;
use crate::prune::{self, PruneReport};
use crate::roots::Roots;
use crate::store::Store;
use crate::SnapshotId;

/// What [`Gc::prune`] removes.
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

/// Garbage collection of the store. Get one with [`Store::gc`].
#[derive(Clone, Copy, Debug)]
pub struct Gc<'a> {
    pub(crate) store: &'a Store,
}

impl Gc<'_> {
    /// Removes build cache as [`PruneOptions`] says (see the module docs). Needs the store to
    /// itself: fails with [`CacheError::Busy`] if another process has it open.
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport, CacheError> {
        if opts.all && opts.until.is_none() && opts.keep_storage.is_none() {
            return self.store.with_exclusive(|| {
                let mut report = prune::unreachable(self.store)?;
                self.prune_logs(&mut report, |_| true)?;
                Ok(report)
            });
        }
        self.store.with_exclusive(|| self.prune_selective(opts))
    }

    /// Drops the cache index and every snapshot and blob not reachable from a tag (module
    /// `prune`); build logs stay. Needs the store to itself: fails with [`CacheError::Busy`]
    /// if another process has it open. Must not run while other threads of this process use
    /// the same `Store`.
    pub fn prune_all(&self) -> Result<PruneReport, CacheError> {
        self.store.with_exclusive(|| prune::unreachable(self.store))
    }

    fn prune_selective(&self, opts: &PruneOptions) -> Result<PruneReport, CacheError> {
        let store = self.store;
        let snapshots = store.snapshots();
        let mut report = PruneReport::default();
        let protected = Roots::of(store)?.snapshots(store)?;
        let mut records = store.index().all()?;
        records.sort_by_key(|(k, r)| (r.last_activity(), *k));
        let built: HashSet<SnapshotId> = records
            .iter()
            .filter_map(|(k, r)| r.built_layer(k))
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
            Some(_) => store.usage().totals()?.total(),
            None => 0,
        };
        let over = |usage: u64| match opts.keep_storage {
            Some(limit) => usage > limit,
            None => true,
        };

        // Logs first: they are the cheapest thing to lose.
        let newest_log = store.logs().list()?.last().map(|l| l.dir.clone());
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
                    && snapshots.path(l).is_some();
                if removable {
                    if opts.keep_storage.is_some() {
                        let size = snapshots.path(l).map_or(Ok(0), |p| fsutil::tree_size(&p))?;
                        usage = usage.saturating_sub(size);
                    }
                    drop_snaps.push(*l);
                }
            }
        }
        report.cache_records = store.index().remove(&drop_keys)?;
        store
            .layer_info()
            .forget(&drop_snaps, crate::tables::Durable::Now)?;
        for id in drop_snaps {
            if let Some(path) = snapshots.path(&id) {
                report.bytes += fsutil::tree_size(&path)?;
                fsutil::remove_tree(&path)?;
                report.snapshots += 1;
            }
        }
        store
            .copy_donors()
            .retain(|id| snapshots.path(id).is_some())?;
        Ok(report)
    }

    /// Removes the build log directories `go` picks, counting them in `report`.
    fn prune_logs(
        &self,
        report: &mut PruneReport,
        mut go: impl FnMut(&BuildLogs) -> bool,
    ) -> Result<(), CacheError> {
        for logs in self.store.logs().list()? {
            if go(&logs) {
                report.bytes += fsutil::tree_size(&logs.dir)?;
                fsutil::remove_tree(&logs.dir)?;
                report.logs += 1;
            }
        }
        Ok(())
    }
}
