//! [`SnapshotId`]: the name of an unpacked layer in the store's snapshot directory.
//!
//! It lives here, not in the store, because the ports name it too: an image source returns
//! the snapshots it made (`rbuild_ports::ImageSource::pull`), and the adapters implementing
//! that port should not link the store for a newtype. `rbuild_cache` re-exports it.

use serde::{Deserialize, Serialize};

use crate::Digest;

/// Identifies an unpacked layer in the snapshot store. Base-image layers are identified by
/// their diff_id; layers built here by the cache key of the vertex that made them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SnapshotId(pub Digest);
