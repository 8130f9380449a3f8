//! The `layer_info` table: a snapshot's tar form (its diff_id and size), recorded by the
//! exporter when it first turns the snapshot into a layer, so later exports and GC know it
//! without re-reading the snapshot.

use rbuild_types::Digest;
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
        tables::put_json(self.db, LAYER_INFO, NAME, &id.0, info)
    }

    /// Forgets the tar form of snapshots that are removed or replaced.
    pub(crate) fn forget(&self, ids: &[SnapshotId]) -> Result<(), CacheError> {
        if ids.is_empty() {
            return Ok(());
        }
        tables::write(self.db, LAYER_INFO, |t, p| {
            for id in ids {
                t.remove(id.0.as_bytes().as_slice())
                    .map_err(idx_err("remove", p))?;
            }
            Ok(())
        })
    }
}
