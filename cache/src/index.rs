//! The index: an embedded transactional database (redb) at `index.redb` holding
//!
//! | table        | key                         | value                               |
//! |--------------|-----------------------------|-------------------------------------|
//! | `cache`      | cache key (32 digest bytes) | [`CacheRecord`] as JSON             |
//! | `layer_info` | snapshot id (32 bytes)      | [`LayerInfo`] as JSON               |
//! | `tags`       | image name (`app:1.0`)      | manifest digest (`sha256:…`)        |
//! | `resolved`   | image reference             | manifest digest (`sha256:…`)        |
//! | `steps`      | step identity (text)        | the key inputs of the step's last run (opaque bytes, module `steps`) |
//!
//! Each operation is one transaction (durable on commit) on the database shared through the
//! `db` module. A process killed mid-transaction leaves the last committed state.

use std::path::Path;

use rbuild_types::Digest;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableError};
use serde::{Deserialize, Serialize};

use crate::error::CacheError;
use crate::store::Store;
use crate::SnapshotId;

pub(crate) const CACHE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("cache");
pub(crate) const LAYERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("layer_info");
pub(crate) const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
pub(crate) const RESOLVED: TableDefinition<&str, &str> = TableDefinition::new("resolved");
pub(crate) const STEPS: TableDefinition<&str, &[u8]> = TableDefinition::new("steps");

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
}

/// A snapshot's tar form: the uncompressed tar's digest (the OCI diff_id) and size.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LayerInfo {
    pub diff_id: Digest,
    pub size: u64,
}

pub(crate) fn idx_err<E: Into<redb::Error>>(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(E) -> CacheError {
    let path = path.to_path_buf();
    move |e| CacheError::Index {
        action,
        path,
        source: Box::new(e.into()),
    }
}

impl Store {
    /// Creates the tables so later read transactions always find them (a read-only check
    /// first: an existing store needs no write, so opening it costs no fsync).
    pub(crate) fn init_index(&self) -> Result<(), CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            {
                let read = db.begin_read().map_err(idx_err("begin read", p))?;
                let present = read
                    .open_table(CACHE)
                    .and_then(|_| read.open_table(LAYERS))
                    .and_then(|_| read.open_table(TAGS))
                    .and_then(|_| read.open_table(RESOLVED))
                    .and_then(|_| read.open_table(STEPS));
                match present {
                    Ok(_) => return Ok(()),
                    Err(TableError::TableDoesNotExist(_)) => {}
                    Err(e) => return Err(idx_err("open table", p)(e)),
                }
            }
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            txn.open_table(CACHE)
                .map_err(idx_err("create table cache", p))?;
            txn.open_table(LAYERS)
                .map_err(idx_err("create table layer_info", p))?;
            txn.open_table(TAGS)
                .map_err(idx_err("create table tags", p))?;
            txn.open_table(RESOLVED)
                .map_err(idx_err("create table resolved", p))?;
            txn.open_table(STEPS)
                .map_err(idx_err("create table steps", p))?;
            txn.commit().map_err(idx_err("commit", p))
        })
    }

    fn get_bytes(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        key: &Digest,
    ) -> Result<Option<Vec<u8>>, CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_read().map_err(idx_err("begin read", p))?;
            let t = match txn.open_table(table) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(idx_err("open table", p)(e)),
            };
            let got = t
                .get(key.as_bytes().as_slice())
                .map_err(idx_err("read", p))?;
            Ok(got.map(|v| v.value().to_vec()))
        })
    }

    fn put_bytes(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        key: &Digest,
        value: &[u8],
    ) -> Result<(), CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            {
                let mut t = txn.open_table(table).map_err(idx_err("open table", p))?;
                t.insert(key.as_bytes().as_slice(), value)
                    .map_err(idx_err("insert", p))?;
            }
            txn.commit().map_err(idx_err("commit", p))
        })
    }

    fn get_str(
        &self,
        table: TableDefinition<&str, &str>,
        table_name: &'static str,
        key: &str,
    ) -> Result<Option<Digest>, CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_read().map_err(idx_err("begin read", p))?;
            let t = match txn.open_table(table) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(idx_err("open table", p)(e)),
            };
            match t.get(key).map_err(idx_err("read", p))? {
                None => Ok(None),
                Some(v) => parse_digest(table_name, key, v.value()).map(Some),
            }
        })
    }

    fn put_str(
        &self,
        table: TableDefinition<&str, &str>,
        key: &str,
        value: &str,
    ) -> Result<(), CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            {
                let mut t = txn.open_table(table).map_err(idx_err("open table", p))?;
                t.insert(key, value).map_err(idx_err("insert", p))?;
            }
            txn.commit().map_err(idx_err("commit", p))
        })
    }

    /// The cached result for a cache key, if any.
    pub fn lookup(&self, key: &Digest) -> Result<Option<CacheRecord>, CacheError> {
        match self.get_bytes(CACHE, key)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| CacheError::Record {
                    table: "cache",
                    key: key.to_string(),
                    source,
                }),
        }
    }

    /// Records (or replaces) the result for a cache key.
    pub fn record(&self, key: &Digest, rec: &CacheRecord) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec(rec).map_err(|source| CacheError::Record {
            table: "cache",
            key: key.to_string(),
            source,
        })?;
        self.put_bytes(CACHE, key, &bytes)
    }

    /// The tar digests of a snapshot, if the exporter has computed them.
    pub fn layer_info(&self, id: &SnapshotId) -> Result<Option<LayerInfo>, CacheError> {
        match self.get_bytes(LAYERS, &id.0)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| CacheError::Record {
                    table: "layer_info",
                    key: id.0.to_string(),
                    source,
                }),
        }
    }

    /// Stores the tar digests of a snapshot.
    pub fn set_layer_info(&self, id: &SnapshotId, info: &LayerInfo) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec(info).map_err(|source| CacheError::Record {
            table: "layer_info",
            key: id.0.to_string(),
            source,
        })?;
        self.put_bytes(LAYERS, &id.0, &bytes)
    }

    /// Points image name `name` (e.g. `app:1.0`) at a manifest.
    pub fn set_tag(&self, name: &str, manifest: &Digest) -> Result<(), CacheError> {
        self.put_str(TAGS, name, &manifest.to_string())
    }

    /// The manifest an image name points at.
    pub fn tag(&self, name: &str) -> Result<Option<Digest>, CacheError> {
        self.get_str(TAGS, "tags", name)
    }

    /// Every tag with its manifest digest, sorted by name.
    pub fn tags(&self) -> Result<Vec<(String, Digest)>, CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_read().map_err(idx_err("begin read", p))?;
            let t = match txn.open_table(TAGS) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(idx_err("open table", p)(e)),
            };
            let mut out = Vec::with_capacity(t.len().map_err(idx_err("count", p))? as usize);
            for item in t.iter().map_err(idx_err("iterate", p))? {
                let (k, v) = item.map_err(idx_err("iterate", p))?;
                let name = k.value().to_string();
                let d = parse_digest("tags", &name, v.value())?;
                out.push((name, d));
            }
            // redb orders &str keys bytewise, which is already name order; sort anyway so the
            // contract does not depend on the key encoding.
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        })
    }

    /// Removes a tag; `false` if there was none.
    pub fn remove_tag(&self, name: &str) -> Result<bool, CacheError> {
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            let existed = {
                let mut t = txn.open_table(TAGS).map_err(idx_err("open table", p))?;
                let removed = t.remove(name).map_err(idx_err("remove", p))?;
                removed.is_some()
            };
            txn.commit().map_err(idx_err("commit", p))?;
            Ok(existed)
        })
    }

    /// Remembers what an image reference resolved to.
    pub fn set_resolved(&self, reference: &str, d: &Digest) -> Result<(), CacheError> {
        self.put_str(RESOLVED, reference, &d.to_string())
    }

    /// What an image reference last resolved to.
    pub fn resolved(&self, reference: &str) -> Result<Option<Digest>, CacheError> {
        self.get_str(RESOLVED, "resolved", reference)
    }
}

pub(crate) fn parse_digest(table: &'static str, key: &str, s: &str) -> Result<Digest, CacheError> {
    s.parse().map_err(|source| CacheError::RecordDigest {
        table,
        key: key.to_string(),
        source,
    })
}
