//! The `lazy_layers` table: snapshot id → the layer blob it is unpacked from, for layers that
//! are part of a result (a base image's, a step's imported through `--cache-from`) but are not
//! unpacked yet. Such a snapshot counts as present for the cache; its blob is downloaded and
//! unpacked only when something reads its files (a step that runs on it, a root-filesystem
//! output), and an image built on it references the blob as it is (a push mounts or skips it).
//!
//! Written by the oci crate's pull and cache import; read by the solver (is a result still
//! here?), by commits (which blob is this layer?) and by the unpacker. Where the blob can be
//! downloaded from is the `blob_sources` table's business.
//!
//! Invariant: a record is only a promise. The blob may be gone from its registry; unpacking
//! then fails with the registry's error, naming the blob.

use rbuild_types::Digest;
use serde::{Deserialize, Serialize};

use crate::db::IndexDb;
use crate::error::CacheError;
use crate::layer_blobs::LayerBlob;
use crate::tables::{self, LAZY_LAYERS};
use crate::SnapshotId;

/// The table's name in error messages.
const NAME: &str = "lazy_layers";

/// A layer known by its blob, not unpacked yet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LazyLayer {
    /// Digest of the uncompressed tar (what the unpacked snapshot must hash to).
    pub diff_id: Digest,
    /// The blob it is unpacked from.
    pub blob: LayerBlob,
}

/// The `lazy_layers` table: snapshot id → [`LazyLayer`]. Get one with
/// [`crate::Store::lazy_layers`].
#[derive(Clone, Copy, Debug)]
pub struct LazyLayers<'a> {
    pub(crate) db: &'a IndexDb,
}

impl LazyLayers<'_> {
    /// The blob snapshot `id` is unpacked from, if it was recorded as lazy.
    pub fn get(&self, id: &SnapshotId) -> Result<Option<LazyLayer>, CacheError> {
        tables::get_json(self.db, LAZY_LAYERS, NAME, &id.0)
    }

    /// Records that snapshot `id` is `layer`'s blob, unpacked when first read.
    pub fn set(&self, id: &SnapshotId, layer: &LazyLayer) -> Result<(), CacheError> {
        tables::put_json(
            self.db,
            tables::Durable::Soon,
            LAZY_LAYERS,
            NAME,
            &id.0,
            layer,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn records_round_trip_and_a_missing_table_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = SnapshotId(Digest::of(b"step"));
        assert_eq!(store.lazy_layers().get(&id).unwrap(), None);
        let layer = LazyLayer {
            diff_id: Digest::of(b"tar"),
            blob: LayerBlob {
                digest: Digest::of(b"gz"),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                size: 2,
            },
        };
        store.lazy_layers().set(&id, &layer).unwrap();
        assert_eq!(store.lazy_layers().get(&id).unwrap(), Some(layer));
    }
}
