//! The `tags` table: image names (`app:1.0`) → manifest digests. Tags are the roots of
//! garbage collection (module `roots`).

use rbuild_types::Digest;
use redb::{ReadableTable, ReadableTableMetadata};

use crate::db::IndexDb;
use crate::error::CacheError;
use crate::tables::{self, idx_err, TAGS};

/// The table's name in error messages.
const NAME: &str = "tags";

/// The `tags` table: image name → manifest digest. Get one with [`crate::Store::tags`].
#[derive(Clone, Copy, Debug)]
pub struct Tags<'a> {
    pub(crate) db: &'a IndexDb,
}

impl Tags<'_> {
    /// The manifest an image name points at.
    pub fn get(&self, name: &str) -> Result<Option<Digest>, CacheError> {
        tables::get_digest(self.db, TAGS, NAME, name)
    }

    /// Points image name `name` (e.g. `app:1.0`) at a manifest.
    pub fn set(&self, name: &str, manifest: &Digest) -> Result<(), CacheError> {
        tables::put_digest(self.db, tables::Durable::Now, TAGS, name, manifest)
    }

    /// Removes a tag; `false` if there was none.
    pub fn remove(&self, name: &str) -> Result<bool, CacheError> {
        tables::write(self.db, tables::Durable::Now, TAGS, |t, p| {
            let removed = t.remove(name).map_err(idx_err("remove", p))?;
            Ok(removed.is_some())
        })
    }

    /// Every tag with its manifest digest, sorted by name.
    pub fn list(&self) -> Result<Vec<(String, Digest)>, CacheError> {
        let got = tables::read(self.db, TAGS, |t, p| {
            let mut out = Vec::with_capacity(t.len().map_err(idx_err("count", p))? as usize);
            for item in t.iter().map_err(idx_err("iterate", p))? {
                let (k, v) = item.map_err(idx_err("iterate", p))?;
                let name = k.value().to_string();
                let d = tables::parse_digest(NAME, &name, v.value())?;
                out.push((name, d));
            }
            // redb orders &str keys bytewise, which is already name order; sort anyway so the
            // contract does not depend on the key encoding.
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        })?;
        Ok(got.unwrap_or_default())
    }
}
