//! The `blob_sources` table: blob digest → the registry repositories the blob was pulled from
//! (newest first, at most [`MAX_SOURCES`]). A push to another repository of the same
//! registry mounts the blob from one of them (`POST ?mount=&from=`) instead of uploading it.
//!
//! Invariant: a record is only a hint; the registry may have lost the blob, and the push then
//! uploads it. `prune_all` drops records whose blob it removes.

use rbuild_types::Digest;
use serde::{Deserialize, Serialize};

use crate::db::IndexDb;
use crate::error::CacheError;
use crate::tables::{self, BLOB_SOURCES};

/// The table's name in error messages.
const NAME: &str = "blob_sources";

/// How many repositories are remembered per blob.
pub const MAX_SOURCES: usize = 4;

/// One repository of one registry a blob came from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BlobSource {
    /// The registry as named in image references (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository (`library/busybox`).
    pub repository: String,
}

/// The `blob_sources` table. Get one with [`crate::Store::blob_sources`].
#[derive(Clone, Copy, Debug)]
pub struct BlobSources<'a> {
    pub(crate) db: &'a IndexDb,
}

impl BlobSources<'_> {
    /// Where blob `digest` was pulled from, newest first (empty when unknown).
    pub fn get(&self, digest: &Digest) -> Result<Vec<BlobSource>, CacheError> {
        Ok(tables::get_json(self.db, BLOB_SOURCES, NAME, digest)?.unwrap_or_default())
    }

    /// Records that blob `digest` came from `source` (moved first if already known).
    pub fn add(&self, digest: &Digest, source: BlobSource) -> Result<(), CacheError> {
        let mut sources = self.get(digest)?;
        if sources.first() == Some(&source) {
            return Ok(());
        }
        sources.retain(|s| *s != source);
        sources.insert(0, source);
        sources.truncate(MAX_SOURCES);
        tables::put_json(
            self.db,
            tables::Durable::Soon,
            BLOB_SOURCES,
            NAME,
            digest,
            &sources,
        )
    }
}
