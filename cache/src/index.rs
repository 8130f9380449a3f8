//! The cache index: the `cache` table, cache key → [`CacheRecord`] (the vertex's result).
//!
//! [`CacheIndex`] looks results up and records them (with what the step was keyed on, in the
//! same transaction, see [`crate::Steps`]), lists them for `rbuild du` and GC, stamps their
//! last use and removes them.

use rbuild_types::Digest;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::db::IndexDb;
use crate::error::CacheError;
use crate::tables::{self, idx_err, CACHE, STEPS};
use crate::SnapshotId;

/// The table's name in error messages.
const NAME: &str = "cache";

/// The result of a cached vertex: its root filesystem's layers, bottom first.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CacheRecord {
    pub layers: Vec<SnapshotId>,
    /// When the record was made (seconds since the Unix epoch).
    pub created_unix: u64,
    /// The display name of the step that made it (`[build 2/4] RUN make`), for `rbuild du`.
    #[serde(default)]
    pub name: String,
    /// When a build last used the record (seconds since the Unix epoch; 0 = never since it
    /// was made). Garbage collection drops the least recently used records first.
    #[serde(default)]
    pub last_used_unix: u64,
}

impl CacheRecord {
    /// The later of creation and last use.
    pub fn last_activity(&self) -> u64 {
        self.created_unix.max(self.last_used_unix)
    }

    /// The layer this record's step made itself (its top layer, named by its own `key`), if
    /// it made one (a base image's record names layers it pulled).
    pub(crate) fn built_layer(&self, key: &Digest) -> Option<SnapshotId> {
        self.layers.last().filter(|l| l.0 == *key).copied()
    }
}

/// The `cache` table: cache key → [`CacheRecord`]. Get one with [`crate::Store::index`].
#[derive(Clone, Copy, Debug)]
pub struct CacheIndex<'a> {
    pub(crate) db: &'a IndexDb,
}

impl CacheIndex<'_> {
    /// The cached result for a cache key, if any.
    pub fn lookup(&self, key: &Digest) -> Result<Option<CacheRecord>, CacheError> {
        tables::get_json(self.db, CACHE, NAME, key)
    }

    /// Records (or replaces) the result for a cache key.
    pub fn record(&self, key: &Digest, rec: &CacheRecord) -> Result<(), CacheError> {
        tables::put_json(self.db, tables::Durable::Soon, CACHE, NAME, key, rec)
    }

    /// Records (or replaces) the result for a cache key together with what step `identity`
    /// was keyed on, in one transaction (one fsync instead of two).
    pub fn record_step(
        &self,
        key: &Digest,
        rec: &CacheRecord,
        step: Option<(&str, &[u8])>,
    ) -> Result<(), CacheError> {
        let bytes = tables::encode(NAME, key, rec)?;
        tables::write_txn(self.db, tables::Durable::Soon, |txn, p| {
            let mut t = txn.open_table(CACHE).map_err(idx_err("open table", p))?;
            t.insert(key.as_bytes().as_slice(), bytes.as_slice())
                .map_err(idx_err("insert", p))?;
            if let Some((identity, inputs)) = step {
                let mut s = txn.open_table(STEPS).map_err(idx_err("open table", p))?;
                s.insert(identity, inputs).map_err(idx_err("insert", p))?;
            }
            Ok(())
        })
    }

    /// Every cache record with its key, in key order.
    pub fn all(&self) -> Result<Vec<(Digest, CacheRecord)>, CacheError> {
        let got = tables::read(self.db, CACHE, |t, p| {
            let mut out = Vec::new();
            for item in t.iter().map_err(idx_err("iterate", p))? {
                let (k, v) = item.map_err(idx_err("iterate", p))?;
                let Ok(bytes) = <[u8; 32]>::try_from(k.value()) else {
                    continue; // not a digest key: not ours to interpret
                };
                let key = Digest::from_bytes(bytes);
                out.push((key, tables::decode(NAME, &key, v.value())?));
            }
            Ok(out)
        })?;
        Ok(got.unwrap_or_default())
    }

    /// Stamps the records of `keys` as used at `now_unix`, in one transaction. Keys without a
    /// record are skipped.
    pub fn touch(&self, keys: &[Digest], now_unix: u64) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        tables::write(self.db, tables::Durable::Soon, CACHE, |t, p| {
            for key in keys {
                let k = key.as_bytes();
                let Some(old) = t.get(k.as_slice()).map_err(idx_err("read", p))? else {
                    continue;
                };
                let mut rec: CacheRecord = tables::decode(NAME, key, old.value())?;
                drop(old);
                rec.last_used_unix = now_unix;
                let bytes = tables::encode(NAME, key, &rec)?;
                t.insert(k.as_slice(), bytes.as_slice())
                    .map_err(idx_err("insert", p))?;
            }
            Ok(())
        })
    }

    /// Removes the records of `keys` in one transaction; returns how many existed.
    pub fn remove(&self, keys: &[Digest]) -> Result<u64, CacheError> {
        tables::write(self.db, tables::Durable::Now, CACHE, |t, p| {
            let mut n = 0;
            for key in keys {
                if t.remove(key.as_bytes().as_slice())
                    .map_err(idx_err("remove", p))?
                    .is_some()
                {
                    n += 1;
                }
            }
            Ok(n)
        })
    }
}
