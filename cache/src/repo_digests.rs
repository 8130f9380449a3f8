//! The `repo_digests` table: stored manifest digest → the registry repositories that hold the
//! image, each with the digest the registry knows it by (Docker's `RepoDigests`). A push
//! records the digest of the manifest as sent (its distribution form: compressed layers, so
//! not the stored manifest's digest), a pull the digest the reference resolved to (the index
//! of a multi-platform image, else the manifest).
//!
//! Invariant: a record is only what was true when pushed or pulled (the registry's tag may
//! have moved since); one entry per repository, the newest. `prune_all` drops records of
//! manifests it removes.

use rbuild_types::Digest;
use serde::{Deserialize, Serialize};

use crate::db::IndexDb;
use crate::error::CacheError;
use crate::tables::{self, REPO_DIGESTS};

/// The table's name in error messages.
const NAME: &str = "repo_digests";

/// One repository holding an image, and the digest it holds it by.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RepoDigest {
    /// The registry as named in image references (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository (`library/busybox`).
    pub repository: String,
    /// The manifest (or index) digest in that repository.
    pub digest: Digest,
}

/// The `repo_digests` table. Get one with [`crate::Store::repo_digests`].
#[derive(Clone, Copy, Debug)]
pub struct RepoDigests<'a> {
    pub(crate) db: &'a IndexDb,
}

impl RepoDigests<'_> {
    /// The repositories known to hold stored manifest `manifest`, newest first (empty when
    /// none).
    pub fn get(&self, manifest: &Digest) -> Result<Vec<RepoDigest>, CacheError> {
        Ok(tables::get_json(self.db, REPO_DIGESTS, NAME, manifest)?.unwrap_or_default())
    }

    /// Records that `entry`'s repository holds stored manifest `manifest` (replacing what was
    /// known of that repository).
    pub fn add(&self, manifest: &Digest, entry: RepoDigest) -> Result<(), CacheError> {
        let mut entries = self.get(manifest)?;
        if entries.first() == Some(&entry) {
            return Ok(());
        }
        entries.retain(|e| !(e.registry == entry.registry && e.repository == entry.repository));
        entries.insert(0, entry);
        tables::put_json(
            self.db,
            tables::Durable::Soon,
            REPO_DIGESTS,
            NAME,
            manifest,
            &entries,
        )
    }
}
