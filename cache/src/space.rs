//! Room on the store's filesystem: whether it is full, for telling "the disk is full" apart
//! from other failures (a RUN whose command failed on a full store says so).

use std::path::Path;

use crate::error::CacheError;

/// Below this many free bytes the store's filesystem counts as full: a write that fails for
/// lack of room leaves at most a partial block or two.
const FULL_BELOW: u64 = 1024 * 1024;

/// The filesystem the store lives on. Get one with [`crate::Store::space`].
#[derive(Clone, Copy, Debug)]
pub struct Space<'a> {
    /// The store's root.
    pub(crate) root: &'a Path,
}

impl Space<'_> {
    /// Bytes and inodes available on the store's filesystem to an unprivileged writer (a
    /// RUN's command has no `CAP_SYS_RESOURCE`, so blocks reserved for root are not its);
    /// inodes are `None` where the filesystem does not count them.
    pub fn free(&self) -> Result<(u64, Option<u64>), CacheError> {
        let st = nix::sys::statvfs::statvfs(self.root).map_err(|e| CacheError::Io {
            action: "check free space of",
            path: self.root.to_path_buf(),
            source: e.into(),
        })?;
        let bytes = st.blocks_available().saturating_mul(st.fragment_size());
        let inodes = (st.files() > 0).then_some(st.files_available());
        Ok((bytes, inodes))
    }

    /// Whether the store's filesystem is full: under 1 MiB free, or no free inode (on a
    /// filesystem that counts them). `false` when it cannot be told.
    pub fn is_full(&self) -> bool {
        match self.free() {
            Ok((bytes, inodes)) => bytes < FULL_BELOW || inodes == Some(0),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roomy_store_is_not_full() {
        let t = tempfile::tempdir().unwrap();
        let store = crate::Store::open(t.path()).unwrap();
        let (bytes, _) = store.space().free().unwrap();
        // The test machine has more than a megabyte free where it keeps temp dirs.
        if bytes > 16 * FULL_BELOW {
            assert!(!store.space().is_full());
        }
    }
}
