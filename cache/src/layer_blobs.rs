//! The `layer_blobs` table: diff_id → the blob a layer is stored as (digest, media type,
//! size), recorded when a base image's layer is pulled or loaded. Committing an image that
//! builds on that base references the same blob (never recompressed) by looking it up here.
//!
//! Invariant: a record is only a hint; the blob may have been pruned since, so readers check
//! `Store::has_blob` before using it. `prune_all` drops records whose blob it removes.

use rbuild_types::Digest;
use serde::{Deserialize, Serialize};

use redb::{TableDefinition, TableError};

use crate::error::CacheError;
use crate::index::idx_err;
use crate::store::Store;

pub(crate) const LAYER_BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("layer_blobs");

/// The blob a layer (named by its diff_id) is stored as.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// Digest of the (possibly compressed) blob.
    pub digest: Digest,
    /// Its media type as found in the manifest it came with (OCI or Docker).
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Store {
    /// Records that the layer with `diff_id` is stored as `blob` (replacing any record).
    pub fn set_layer_blob(&self, diff_id: &Digest, blob: &LayerBlob) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec(blob).map_err(|source| CacheError::Record {
            table: "layer_blobs",
            key: diff_id.to_string(),
            source,
        })?;
        self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_write().map_err(idx_err("begin write", p))?;
            {
                let mut t = txn
                    .open_table(LAYER_BLOBS)
                    .map_err(idx_err("open table layer_blobs", p))?;
                t.insert(diff_id.as_bytes().as_slice(), bytes.as_slice())
                    .map_err(idx_err("insert", p))?;
            }
            txn.commit().map_err(idx_err("commit", p))
        })
    }

    /// The blob recorded for the layer with `diff_id`, if any (it may have been pruned since).
    pub fn layer_blob(&self, diff_id: &Digest) -> Result<Option<LayerBlob>, CacheError> {
        let got = self.index.with(|db| {
            let p = &self.db_path;
            let txn = db.begin_read().map_err(idx_err("begin read", p))?;
            let t = match txn.open_table(LAYER_BLOBS) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(idx_err("open table layer_blobs", p)(e)),
            };
            let v = t
                .get(diff_id.as_bytes().as_slice())
                .map_err(idx_err("read", p))?;
            Ok(v.map(|v| v.value().to_vec()))
        })?;
        match got {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| CacheError::Record {
                    table: "layer_blobs",
                    key: diff_id.to_string(),
                    source,
                }),
        }
    }
}
