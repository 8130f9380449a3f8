//! Bulk access to the cache table (listing, last-use stamps) and the `steps` table, which
//! remembers per step identity what the step's key was computed from the last time it ran
//! (the solver's `--explain-cache` diffs against it; the bytes are the solver's business).

use rbuild_types::Digest;
use redb::{ReadableTable, TableError};

use crate::error::CacheError;
use crate::index::{idx_err, CacheRecord, CACHE, STEPS};
use crate::store::Store;

impl Store {
    /// Every cache record with its key, in key order.
    pub fn cache_records(&self) -> Result<Vec<(Digest, CacheRecord)>, CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_read().map_err(idx_err("begin read", p))?;
            let t = match txn.open_table(CACHE) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(idx_err("open table", p)(e)),
            };
            let mut out = Vec::new();
            for item in t.iter().map_err(idx_err("iterate", p))? {
                let (k, v) = item.map_err(idx_err("iterate", p))?;
                let Ok(bytes) = <[u8; 32]>::try_from(k.value()) else {
                    continue; // not a digest key: not ours to interpret
                };
                let key = Digest::from_bytes(bytes);
                let rec =
                    serde_json::from_slice(v.value()).map_err(|source| CacheError::Record {
                        table: "cache",
                        key: key.to_string(),
                        source,
                    })?;
                out.push((key, rec));
            }
            Ok(out)
        })
    }

    /// Stamps the records of `keys` as used at `now_unix`, in one transaction. Keys without a
    /// record are skipped.
    pub fn touch(&self, keys: &[Digest], now_unix: u64) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            {
                let mut t = txn.open_table(CACHE).map_err(idx_err("open table", p))?;
                for key in keys {
                    let k = key.as_bytes();
                    let Some(old) = t.get(k.as_slice()).map_err(idx_err("read", p))? else {
                        continue;
                    };
                    let mut rec: CacheRecord =
                        serde_json::from_slice(old.value()).map_err(|source| {
                            CacheError::Record {
                                table: "cache",
                                key: key.to_string(),
                                source,
                            }
                        })?;
                    drop(old);
                    rec.last_used_unix = now_unix;
                    let bytes = serde_json::to_vec(&rec).map_err(|source| CacheError::Record {
                        table: "cache",
                        key: key.to_string(),
                        source,
                    })?;
                    t.insert(k.as_slice(), bytes.as_slice())
                        .map_err(idx_err("insert", p))?;
                }
            }
            txn.commit().map_err(idx_err("commit", p))
        })
    }

    /// Removes the records of `keys` in one transaction; returns how many existed.
    pub fn remove_records(&self, keys: &[Digest]) -> Result<u64, CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            let mut n = 0;
            {
                let mut t = txn.open_table(CACHE).map_err(idx_err("open table", p))?;
                for key in keys {
                    if t.remove(key.as_bytes().as_slice())
                        .map_err(idx_err("remove", p))?
                        .is_some()
                    {
                        n += 1;
                    }
                }
            }
            txn.commit().map_err(idx_err("commit", p))?;
            Ok(n)
        })
    }

    /// What step `identity` recorded the last time it ran.
    pub fn step_inputs(&self, identity: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_read().map_err(idx_err("begin read", p))?;
            let t = match txn.open_table(STEPS) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(idx_err("open table", p)(e)),
            };
            let got = t.get(identity).map_err(idx_err("read", p))?;
            Ok(got.map(|v| v.value().to_vec()))
        })
    }

    /// Remembers what step `identity` was keyed on in the run that just finished.
    pub fn set_step_inputs(&self, identity: &str, inputs: &[u8]) -> Result<(), CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            {
                let mut t = txn.open_table(STEPS).map_err(idx_err("open table", p))?;
                t.insert(identity, inputs).map_err(idx_err("insert", p))?;
            }
            txn.commit().map_err(idx_err("commit", p))
        })
    }

    /// Records (or replaces) the result for a cache key together with what step `identity`
    /// was keyed on, in one transaction (one fsync instead of two).
    pub fn record_step(
        &self,
        key: &Digest,
        rec: &CacheRecord,
        step: Option<(&str, &[u8])>,
    ) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec(rec).map_err(|source| CacheError::Record {
            table: "cache",
            key: key.to_string(),
            source,
        })?;
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            {
                let mut t = txn.open_table(CACHE).map_err(idx_err("open table", p))?;
                t.insert(key.as_bytes().as_slice(), bytes.as_slice())
                    .map_err(idx_err("insert", p))?;
                if let Some((identity, inputs)) = step {
                    let mut s = txn.open_table(STEPS).map_err(idx_err("open table", p))?;
                    s.insert(identity, inputs).map_err(idx_err("insert", p))?;
                }
            }
            txn.commit().map_err(idx_err("commit", p))
        })
    }
}
