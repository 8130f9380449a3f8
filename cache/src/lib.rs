//! rbuild's store (work in progress: see the cache helper's contract in ARCHITECTURE.md).

use rbuild_types::Digest;
use serde::{Deserialize, Serialize};

/// Identifies an unpacked layer in the snapshot store. Base-image layers are identified by
/// their diff_id; layers built here by the cache key of the vertex that made them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SnapshotId(pub Digest);
