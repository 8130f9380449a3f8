//! The `steps` table: per step identity, what the step's key was computed from the last time
//! it ran (the solver's `--explain-cache` diffs against it; the bytes are the solver's
//! business). [`crate::CacheIndex::record_step`] writes it together with the step's result.

use crate::db::IndexDb;
use crate::error::CacheError;
use crate::tables::{self, idx_err, STEPS};

/// The `steps` table: step identity → its last key inputs. Get one with
/// [`crate::Store::steps`].
#[derive(Clone, Copy, Debug)]
pub struct Steps<'a> {
    pub(crate) db: &'a IndexDb,
}

impl Steps<'_> {
    /// What step `identity` recorded the last time it ran.
    pub fn inputs(&self, identity: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let got = tables::read(self.db, STEPS, |t, p| {
            let got = t.get(identity).map_err(idx_err("read", p))?;
            Ok(got.map(|v| v.value().to_vec()))
        })?;
        Ok(got.flatten())
    }

    /// Remembers what step `identity` was keyed on in the run that just finished.
    pub fn set_inputs(&self, identity: &str, inputs: &[u8]) -> Result<(), CacheError> {
        tables::write(self.db, tables::Durable::Soon, STEPS, |t, p| {
            t.insert(identity, inputs).map_err(idx_err("insert", p))?;
            Ok(())
        })
    }
}
