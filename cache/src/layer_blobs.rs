//! The `layer_blobs` table: diff_id → the blob a layer is stored as (digest, media type,
//! size), recorded when a base image's layer is pulled or loaded, and when a layer built here
//! is first compressed for a push or an export. Committing an image that builds on that base
//! references the same blob (never recompressed) by looking it up here; a later push of a
//! built layer reuses its compressed form.
//!
//! Invariant: a record is only a hint; the blob may have been pruned since, so readers check
//! [`crate::Blobs::has`] before using it. `prune_all` drops records whose blob it removes.

use rbuild_types::Digest;
use serde::{Deserialize, Serialize};

use crate::db::IndexDb;
use crate::error::CacheError;
use crate::tables::{self, LAYER_BLOBS};

/// The table's name in error messages.
const NAME: &str = "layer_blobs";

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

/// The `layer_blobs` table: diff_id → [`LayerBlob`]. Get one with
/// [`crate::Store::layer_blobs`].
#[derive(Clone, Copy, Debug)]
pub struct LayerBlobs<'a> {
    pub(crate) db: &'a IndexDb,
}

impl LayerBlobs<'_> {
    /// The blob recorded for the layer with `diff_id`, if any (it may have been pruned since).
    pub fn get(&self, diff_id: &Digest) -> Result<Option<LayerBlob>, CacheError> {
        tables::get_json(self.db, LAYER_BLOBS, NAME, diff_id)
    }

    /// Records that the layer with `diff_id` is stored as `blob` (replacing any record).
    pub fn set(&self, diff_id: &Digest, blob: &LayerBlob) -> Result<(), CacheError> {
        tables::put_json(
            self.db,
            tables::Durable::Soon,
            LAYER_BLOBS,
            NAME,
            diff_id,
            blob,
        )
    }
}
