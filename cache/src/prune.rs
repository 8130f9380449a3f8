//! Maintenance: `prune_all` (garbage collection with tags as the only roots) and `disk_usage`.
//!
//! Reachability: a tag names a manifest blob. Manifests are parsed as JSON: an index's
//! `manifests[].digest`, a manifest's `config.digest` and `layers[].digest` are kept. A
//! snapshot is kept when it is a layer of a tagged image, i.e. its id, or its recorded
//! `diff_id`, appears in a kept config's `rootfs.diff_ids`. Everything else goes, and the
//! cache index is emptied; layer-blob records
//! of removed blobs are dropped. The index is updated first, so a crash half-way leaves only
//! unreferenced files, which the next prune removes.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use rbuild_types::Digest;
use serde_json::Value;

use crate::error::CacheError;
use crate::fsutil;
use crate::index::{idx_err, LayerInfo, CACHE, LAYERS, RESOLVED, STEPS};
use crate::layer_blobs::{LayerBlob, LAYER_BLOBS};
use crate::store::{clean_tmp, Store};

/// What `prune_all` removed.
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

/// Apparent bytes used by each part of the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub blobs: u64,
    pub snapshots: u64,
    pub index: u64,
    /// Build logs (`logs/`).
    pub logs: u64,
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

impl DiskUsage {
    /// All parts together.
    pub fn total(&self) -> u64 {
        self.blobs + self.snapshots + self.index + self.logs
    }
}

/// What survives a prune.
#[derive(Default)]
struct Roots {
    blobs: HashSet<Digest>,
    diff_ids: HashSet<Digest>,
}

impl Store {
    /// Drops the cache index and every snapshot and blob not reachable from a tag. Needs the
    /// store to itself: fails with [`CacheError::Busy`] if another process has it open. Must
    /// not run while other threads of this process use the same `Store`.
    pub fn prune_all(&self) -> Result<PruneReport, CacheError> {
        self.lock.with_exclusive(&self.root, || self.prune_locked())
    }

    pub(crate) fn prune_locked(&self) -> Result<PruneReport, CacheError> {
        // This handle's journal must not look like a dead process's to `clean_tmp`.
        self.sync()?;
        let roots = self.roots()?;
        let mut report = PruneReport::default();

        // Snapshots to keep, decided before touching the index (layer info is needed).
        let mut keep_snapshots = BTreeSet::new();
        for dir in fsutil::list_dir(&self.snapshots_dir)? {
            if let Some(id) = digest_of_name(&dir) {
                let by_info = self
                    .layer_info(&crate::SnapshotId(id))?
                    .is_some_and(|LayerInfo { diff_id, .. }| roots.diff_ids.contains(&diff_id));
                if roots.diff_ids.contains(&id) || by_info {
                    keep_snapshots.insert(id);
                }
            }
        }

        report.cache_records = self.prune_index(&roots, &keep_snapshots)?;

        for dir in fsutil::list_dir(&self.snapshots_dir)? {
            if digest_of_name(&dir).is_some_and(|id| keep_snapshots.contains(&id)) {
                continue;
            }
            report.bytes += fsutil::tree_size(&dir)?;
            fsutil::remove_tree(&dir)?;
            report.snapshots += 1;
        }
        for blob in fsutil::list_dir(&self.blobs_dir)? {
            if digest_of_name(&blob).is_some_and(|d| roots.blobs.contains(&d)) {
                continue;
            }
            report.bytes += fsutil::tree_size(&blob)?;
            fsutil::remove_tree(&blob)?;
            report.blobs += 1;
        }
        clean_tmp(&self.tmp_dir, &self.snapshots_dir)?;
        Ok(report)
    }

    /// Empties the cache and steps tables, and drops layer info and resolved references that
    /// point at what is about to be removed. Returns the number of cache records dropped.
    fn prune_index(
        &self,
        roots: &Roots,
        keep_snapshots: &BTreeSet<Digest>,
    ) -> Result<u64, CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            let dropped;
            {
                let mut cache = txn.open_table(CACHE).map_err(idx_err("open table", p))?;
                let before =
                    redb::ReadableTableMetadata::len(&cache).map_err(idx_err("count", p))?;
                cache
                    .retain(|_, _| false)
                    .map_err(idx_err("clear cache", p))?;
                dropped = before;

                let mut layers = txn.open_table(LAYERS).map_err(idx_err("open table", p))?;
                layers
                    .retain(|k, _| {
                        <[u8; 32]>::try_from(k)
                            .is_ok_and(|b| keep_snapshots.contains(&Digest::from_bytes(b)))
                    })
                    .map_err(idx_err("prune layer info", p))?;

                let mut resolved = txn.open_table(RESOLVED).map_err(idx_err("open table", p))?;
                resolved
                    .retain(|_, v| v.parse::<Digest>().is_ok_and(|d| roots.blobs.contains(&d)))
                    .map_err(idx_err("prune resolved", p))?;

                let mut blobs = txn
                    .open_table(LAYER_BLOBS)
                    .map_err(idx_err("open table layer_blobs", p))?;
                blobs
                    .retain(|_, v| {
                        serde_json::from_slice::<LayerBlob>(v)
                            .is_ok_and(|b| roots.blobs.contains(&b.digest))
                    })
                    .map_err(idx_err("prune layer blobs", p))?;

                // What each step was keyed on only serves `--explain-cache` against cache
                // records, which are all gone.
                let mut steps = txn.open_table(STEPS).map_err(idx_err("open table", p))?;
                steps
                    .retain(|_, _| false)
                    .map_err(idx_err("clear steps", p))?;
            }
            txn.commit().map_err(idx_err("commit", p))?;
            Ok(dropped)
        })
    }

    /// The diff_ids of every tagged image's layers.
    pub(crate) fn root_diff_ids(&self) -> Result<HashSet<Digest>, CacheError> {
        Ok(self.roots()?.diff_ids)
    }

    /// Blobs and diff_ids reachable from the tags.
    fn roots(&self) -> Result<Roots, CacheError> {
        let mut roots = Roots::default();
        let mut todo: Vec<Digest> = self.tags()?.into_iter().map(|(_, d)| d).collect();
        while let Some(d) = todo.pop() {
            if !roots.blobs.insert(d) {
                continue;
            }
            // A missing or unreadable manifest has nothing more to keep.
            let Some(doc) = self.json_blob(&d) else {
                continue;
            };
            for m in array(&doc, "manifests") {
                todo.extend(digest_field(m));
            }
            for l in array(&doc, "layers") {
                roots.blobs.extend(digest_field(l));
            }
            if let Some(cfg) = doc.get("config").and_then(digest_field) {
                roots.blobs.insert(cfg);
                if let Some(cfg_doc) = self.json_blob(&cfg) {
                    let ids = cfg_doc
                        .get("rootfs")
                        .and_then(|r| r.get("diff_ids"))
                        .and_then(Value::as_array);
                    for id in ids.into_iter().flatten() {
                        if let Some(d) = id.as_str().and_then(|s| s.parse().ok()) {
                            roots.diff_ids.insert(d);
                        }
                    }
                }
            }
        }
        Ok(roots)
    }

    fn json_blob(&self, d: &Digest) -> Option<Value> {
        let bytes = self.read_blob(d).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Bytes used by blobs, snapshots and the index database.
    pub fn disk_usage(&self) -> Result<DiskUsage, CacheError> {
        Ok(DiskUsage {
            blobs: fsutil::tree_size(&self.blobs_dir)?,
            snapshots: fsutil::tree_size(&self.snapshots_dir)?,
            index: fsutil::tree_size(&self.db_path)?,
            logs: fsutil::tree_size(&self.logs_dir())?,
        })
    }
}

fn array<'a>(doc: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    doc.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn digest_field(v: &Value) -> Option<Digest> {
    v.get("digest")?.as_str()?.parse().ok()
}

/// The digest a store entry is named after (`<hex>`), if its name is one.
pub(crate) fn digest_of_name(path: &Path) -> Option<Digest> {
    let name = path.file_name()?.to_str()?;
    format!("sha256:{name}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_parse_as_digests() {
        let d = Digest::of(b"x");
        assert_eq!(
            digest_of_name(&Path::new("/s/blobs/sha256").join(d.hex())),
            Some(d)
        );
        assert_eq!(
            digest_of_name(Path::new("/s/blobs/sha256/not-a-digest")),
            None
        );
        assert_eq!(digest_of_name(Path::new("/")), None);
    }

    #[test]
    fn manifest_fields_are_read_leniently() {
        let d = Digest::of(b"c");
        let doc = serde_json::json!({"config": {"digest": d.to_string()}, "layers": [{"digest": "bad"}, 3]});
        assert_eq!(doc.get("config").and_then(digest_field), Some(d));
        assert_eq!(array(&doc, "layers").filter_map(digest_field).count(), 0);
        assert_eq!(array(&doc, "manifests").count(), 0);
    }

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
