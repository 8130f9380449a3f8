//! The `layer_info` table: a snapshot's tar form (its diff_id and size), recorded by the
//! exporter when it first turns the snapshot into a layer, so later exports and GC know it
//! without re-reading the snapshot.
//!
//! A layer built here may have no blob yet (its bytes are made when an output needs them, by
//! the oci crate): then this table is how the blob is found again, from its diff_id to the
//! snapshots that tar to it ([`LayerInfos::snapshots_of`]), and why GC keeps those snapshots
//! while a tagged image names the diff_id (module `roots`).

use rbuild_types::Digest;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::db::IndexDb;
use crate::error::CacheError;
use crate::tables::{self, idx_err, LAYER_INFO};
use crate::SnapshotId;

/// The table's name in error messages.
const NAME: &str = "layer_info";

/// A snapshot's tar form: the uncompressed tar's digest (the OCI diff_id) and size.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LayerInfo {
    pub diff_id: Digest,
    pub size: u64,
}

/// The `layer_info` table: snapshot id → [`LayerInfo`]. Get one with
/// [`crate::Store::layer_info`].
#[derive(Clone, Copy, Debug)]
pub struct LayerInfos<'a> {
    pub(crate) db: &'a IndexDb,
}

impl LayerInfos<'_> {
    /// The tar digests of a snapshot, if the exporter has computed them.
    pub fn get(&self, id: &SnapshotId) -> Result<Option<LayerInfo>, CacheError> {
        tables::get_json(self.db, LAYER_INFO, NAME, &id.0)
    }

    /// Stores the tar digests of a snapshot.
    pub fn set(&self, id: &SnapshotId, info: &LayerInfo) -> Result<(), CacheError> {
        tables::put_json(
            self.db,
            tables::Durable::Soon,
            LAYER_INFO,
            NAME,
            &id.0,
            info,
        )
    }

    /// The snapshots recorded as tarring to `diff_id`: the one named by the diff_id itself
    /// first, then the others in key order. A scan of the table: it serves the rare making of
    /// a blob that was not written at commit, not a build's hot path.
    pub fn snapshots_of(&self, diff_id: &Digest) -> Result<Vec<SnapshotId>, CacheError> {
        let found = tables::read(self.db, LAYER_INFO, |t, p| {
            let mut out = Vec::new();
            for entry in t.iter().map_err(idx_err("scan", p))? {
                let (k, v) = entry.map_err(idx_err("scan", p))?;
                let Ok(key) = <[u8; 32]>::try_from(k.value()) else {
                    continue;
                };
                let id = SnapshotId(Digest::from_bytes(key));
                let info: LayerInfo = tables::decode(NAME, &id.0, v.value())?;
                if info.diff_id == *diff_id {
                    out.push(id);
                }
            }
            Ok(out)
        })?;
        let mut ids = found.unwrap_or_default();
        ids.sort_by_key(|id| id.0 != *diff_id);
        Ok(ids)
    }

    /// Forgets the tar form of snapshots that are removed or replaced.
    pub(crate) fn forget(
        &self,
        ids: &[SnapshotId],
        durable: tables::Durable,
    ) -> Result<(), CacheError> {
        if ids.is_empty() {
            return Ok(());
        }
        tables::write(self.db, durable, LAYER_INFO, |t, p| {
            for id in ids {
                t.remove(id.0.as_bytes().as_slice())
                    .map_err(idx_err("remove", p))?;
            }
            Ok(())
        })
    }
}
