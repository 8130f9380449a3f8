//! The schema of `index.redb` and the transaction helpers every table type uses.
//!
//! | table         | key                         | value                                  | type (module) |
//! |---------------|-----------------------------|----------------------------------------|---------------|
//! | `cache`       | cache key (32 digest bytes) | [`crate::CacheRecord`] as JSON         | [`crate::CacheIndex`] (`index`) |
//! | `layer_info`  | snapshot id (32 bytes)      | [`crate::LayerInfo`] as JSON           | [`crate::LayerInfos`] (`layer_info`) |
//! | `tags`        | image name (`app:1.0`)      | manifest digest (`sha256:…`)           | [`crate::Tags`] (`tags`) |
//! | `resolved`    | image reference             | manifest digest (`sha256:…`)           | [`crate::Resolved`] (`resolved`) |
//! | `steps`       | step identity (text)        | the key inputs of the step's last run (opaque bytes) | [`crate::Steps`] (`steps`) |
//! | `layer_blobs` | diff_id (32 bytes)          | [`crate::LayerBlob`] as JSON           | [`crate::LayerBlobs`] (`layer_blobs`) |
//! | `blob_sources` | blob digest (32 bytes)     | [`crate::BlobSource`]s as a JSON array | [`crate::BlobSources`] (`blob_sources`) |
//! | `lazy_layers` | snapshot id (32 bytes)      | [`crate::LazyLayer`] as JSON           | [`crate::LazyLayers`] (`lazy_layers`) |
//! | `repo_digests` | manifest digest (32 bytes) | [`crate::RepoDigest`]s as a JSON array | [`crate::RepoDigests`] (`repo_digests`) |
//!
//! Each operation is one transaction (durable on commit) on the database shared through the
//! `db` module. A process killed mid-transaction leaves the last committed state. A write
//! whose closure fails is not committed.

use std::path::Path;

use rbuild_types::Digest;
use redb::{Key, ReadOnlyTable, Table, TableDefinition, TableError, Value, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::db::IndexDb;
use crate::error::CacheError;

pub(crate) const CACHE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("cache");
pub(crate) const LAYER_INFO: TableDefinition<&[u8], &[u8]> = TableDefinition::new("layer_info");
pub(crate) const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
pub(crate) const RESOLVED: TableDefinition<&str, &str> = TableDefinition::new("resolved");
pub(crate) const STEPS: TableDefinition<&str, &[u8]> = TableDefinition::new("steps");
/// Created by its first write; readers take a missing table as empty.
pub(crate) const LAYER_BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("layer_blobs");
/// Created by its first write; readers take a missing table as empty.
pub(crate) const BLOB_SOURCES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blob_sources");
/// Created by its first write; readers take a missing table as empty.
pub(crate) const LAZY_LAYERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("lazy_layers");
/// Created by its first write; readers take a missing table as empty.
pub(crate) const REPO_DIGESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("repo_digests");

/// Maps a redb error to [`CacheError::Index`] with what was being done.
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

/// Creates the tables so later read transactions always find them (a read-only check
/// first: an existing store needs no write, so opening it costs no fsync).
pub(crate) fn create(db: &IndexDb) -> Result<(), CacheError> {
    let p = db.path();
    let present = db.with(|database| {
        let read = database.begin_read().map_err(idx_err("begin read", p))?;
        let present = read
            .open_table(CACHE)
            .and_then(|_| read.open_table(LAYER_INFO))
            .and_then(|_| read.open_table(TAGS))
            .and_then(|_| read.open_table(RESOLVED))
            .and_then(|_| read.open_table(STEPS));
        match present {
            Ok(_) => Ok(true),
            Err(TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(idx_err("open table", p)(e)),
        }
    })?;
    if present {
        return Ok(());
    }
    write_txn(db, Durable::Now, |txn, p| {
        txn.open_table(CACHE)
            .map_err(idx_err("create table cache", p))?;
        txn.open_table(LAYER_INFO)
            .map_err(idx_err("create table layer_info", p))?;
        txn.open_table(TAGS)
            .map_err(idx_err("create table tags", p))?;
        txn.open_table(RESOLVED)
            .map_err(idx_err("create table resolved", p))?;
        txn.open_table(STEPS)
            .map_err(idx_err("create table steps", p))?;
        Ok(())
    })
}

/// Runs `f` over `table` in a read transaction; `None` when the table does not exist.
pub(crate) fn read<K: Key + 'static, V: Value + 'static, T>(
    db: &IndexDb,
    table: TableDefinition<K, V>,
    f: impl FnOnce(&ReadOnlyTable<K, V>, &Path) -> Result<T, CacheError>,
) -> Result<Option<T>, CacheError> {
    let p = db.path();
    db.with(|database| {
        let txn = database.begin_read().map_err(idx_err("begin read", p))?;
        let t = match txn.open_table(table) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(idx_err("open table", p)(e)),
        };
        f(&t, p).map(Some)
    })
}

/// When a write transaction must be on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durable {
    /// Before the write returns: tags, and removals that files are removed after (a crash
    /// must not undo them).
    Now,
    /// By the next [`Durable::Now`] write, [`crate::Store::sync`] or the closing of the
    /// database (module `db`), whichever comes first; reads in this process see it at once,
    /// other processes only once it is durable. What a build records step by step (cache
    /// records, layer info, resolved references, blob records): a crash loses at most those,
    /// i.e. cache misses, never a consistent state. One fsync per build instead of two per
    /// step.
    Soon,
}

/// Runs `f` in one write transaction, committed when `f` succeeds, durable per `durable`.
pub(crate) fn write_txn<T>(
    db: &IndexDb,
    durable: Durable,
    f: impl FnOnce(&WriteTransaction, &Path) -> Result<T, CacheError>,
) -> Result<T, CacheError> {
    let p = db.path();
    db.with_write(durable, |database| {
        let mut txn = database.begin_write().map_err(idx_err("begin write", p))?;
        if durable == Durable::Soon {
            txn.set_durability(redb::Durability::None);
        }
        let out = f(&txn, p)?;
        txn.commit().map_err(idx_err("commit", p))?;
        Ok(out)
    })
}

/// Runs `f` over `table` in one write transaction, committed when `f` succeeds.
pub(crate) fn write<K: Key + 'static, V: Value + 'static, T>(
    db: &IndexDb,
    durable: Durable,
    table: TableDefinition<K, V>,
    f: impl FnOnce(&mut Table<'_, K, V>, &Path) -> Result<T, CacheError>,
) -> Result<T, CacheError> {
    write_txn(db, durable, |txn, p| {
        let mut t = txn.open_table(table).map_err(idx_err("open table", p))?;
        f(&mut t, p)
    })
}

/// Keeps only the entries of `table` that `keep` accepts, inside the write transaction `txn`
/// (`what` names the step in errors).
pub(crate) fn retain<K: Key + 'static, V: Value + 'static>(
    txn: &WriteTransaction,
    p: &Path,
    table: TableDefinition<K, V>,
    what: &'static str,
    keep: impl for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool,
) -> Result<(), CacheError> {
    let mut t = txn.open_table(table).map_err(idx_err("open table", p))?;
    t.retain(keep).map_err(idx_err(what, p))
}

/// The JSON value stored under `key` in a digest-keyed table (`name` for errors).
pub(crate) fn get_json<T: DeserializeOwned>(
    db: &IndexDb,
    table: TableDefinition<&[u8], &[u8]>,
    name: &'static str,
    key: &Digest,
) -> Result<Option<T>, CacheError> {
    let got = read(db, table, |t, p| {
        let v = t
            .get(key.as_bytes().as_slice())
            .map_err(idx_err("read", p))?;
        Ok(v.map(|v| v.value().to_vec()))
    })?;
    got.flatten().map(|b| decode(name, key, &b)).transpose()
}

/// Stores `value` as JSON under `key` in a digest-keyed table (replacing any value).
pub(crate) fn put_json<T: Serialize>(
    db: &IndexDb,
    durable: Durable,
    table: TableDefinition<&[u8], &[u8]>,
    name: &'static str,
    key: &Digest,
    value: &T,
) -> Result<(), CacheError> {
    let bytes = encode(name, key, value)?;
    write(db, durable, table, |t, p| {
        t.insert(key.as_bytes().as_slice(), bytes.as_slice())
            .map_err(idx_err("insert", p))?;
        Ok(())
    })
}

/// The digest stored under `key` in a name-keyed table.
pub(crate) fn get_digest(
    db: &IndexDb,
    table: TableDefinition<&str, &str>,
    name: &'static str,
    key: &str,
) -> Result<Option<Digest>, CacheError> {
    let got = read(db, table, |t, p| {
        match t.get(key).map_err(idx_err("read", p))? {
            None => Ok(None),
            Some(v) => parse_digest(name, key, v.value()).map(Some),
        }
    })?;
    Ok(got.flatten())
}

/// Stores digest `d` under `key` in a name-keyed table (replacing any value).
pub(crate) fn put_digest(
    db: &IndexDb,
    durable: Durable,
    table: TableDefinition<&str, &str>,
    key: &str,
    d: &Digest,
) -> Result<(), CacheError> {
    let value = d.to_string();
    write(db, durable, table, |t, p| {
        t.insert(key, value.as_str())
            .map_err(idx_err("insert", p))?;
        Ok(())
    })
}

/// Decodes a JSON record of table `name` stored under `key`.
pub(crate) fn decode<T: DeserializeOwned>(
    name: &'static str,
    key: &Digest,
    bytes: &[u8],
) -> Result<T, CacheError> {
    serde_json::from_slice(bytes).map_err(|source| CacheError::Record {
        table: name,
        key: key.to_string(),
        source,
    })
}

/// Encodes a record of table `name` to be stored under `key` as JSON.
pub(crate) fn encode<T: Serialize>(
    name: &'static str,
    key: &Digest,
    value: &T,
) -> Result<Vec<u8>, CacheError> {
    serde_json::to_vec(value).map_err(|source| CacheError::Record {
        table: name,
        key: key.to_string(),
        source,
    })
}

/// Parses a digest stored as text in table `name` under `key`.
pub(crate) fn parse_digest(name: &'static str, key: &str, s: &str) -> Result<Digest, CacheError> {
    s.parse().map_err(|source| CacheError::RecordDigest {
        table: name,
        key: key.to_string(),
        source,
    })
}
