//! The `resolved` table: what an image reference for a platform (the image source keys it
//! `docker.io/library/busybox:latest|linux/amd64`) last resolved to, so a later build finds
//! that image in the store without asking the registry.

use rbuild_types::Digest;

use crate::db::IndexDb;
use crate::error::CacheError;
use crate::tables::{self, RESOLVED};

/// The `resolved` table: image reference (with platform) → manifest digest. Get one with
/// [`crate::Store::resolved`].
#[derive(Clone, Copy, Debug)]
pub struct Resolved<'a> {
    pub(crate) db: &'a IndexDb,
}

impl Resolved<'_> {
    /// What an image reference last resolved to.
    pub fn get(&self, reference: &str) -> Result<Option<Digest>, CacheError> {
        tables::get_digest(self.db, RESOLVED, "resolved", reference)
    }

    /// Remembers what an image reference resolved to.
    pub fn set(&self, reference: &str, d: &Digest) -> Result<(), CacheError> {
        tables::put_digest(self.db, tables::Durable::Soon, RESOLVED, reference, d)
    }
}
