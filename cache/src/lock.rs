//! Cross-process locking of a store with `flock(2)` (through `fs4`).
//!
//! Two lock files live in the store root:
//! - `lock`: every open [`crate::Store`] holds a **shared** lock on it for its whole life (an
//!   open store is a build or command in progress). Operations that delete what others may be
//!   using (`Gc::prune_all`, cleaning `tmp/` on open) need it **exclusively**, and only try: they
//!   never wait for a build to finish.
//! - `index.lock`: held exclusively while this process has the index database open (see the
//!   `db` module), because redb lets one process at a time open the file.
//!
//! `flock` locks belong to an open file description, so threads sharing one `Store` share
//! its locks.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use crate::error::{io_err, CacheError};

/// Opens (creating it if needed) a file used only for `flock`-style locks.
pub(crate) fn open_lock_file(path: &Path) -> Result<File, CacheError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("open lock file", path))
}

/// The store-wide lock: shared while the store is open, exclusive for destructive maintenance.
#[derive(Debug)]
pub(crate) struct StoreLock {
    path: PathBuf,
    file: File,
}

impl StoreLock {
    /// Opens the lock file and takes the shared lock. Returns the lock and whether this was the
    /// only user (an exclusive lock could be taken first), in which case `on_exclusive` ran while
    /// the exclusive lock was held (used to clean stale staging entries).
    pub(crate) fn acquire(
        path: &Path,
        on_exclusive: impl FnOnce() -> Result<(), CacheError>,
    ) -> Result<StoreLock, CacheError> {
        let file = open_lock_file(path)?;
        let lock = StoreLock {
            path: path.to_path_buf(),
            file,
        };
        if FileExt::try_lock_exclusive(&lock.file).map_err(io_err("lock", path))? {
            let res = on_exclusive();
            // Downgrading re-takes the lock as shared (not atomic, so it may wait for a prune
            // that slipped in; that is fine).
            FileExt::lock_shared(&lock.file).map_err(io_err("lock shared", path))?;
            res?;
        } else {
            FileExt::lock_shared(&lock.file).map_err(io_err("lock shared", path))?;
        }
        Ok(lock)
    }

    /// Runs `f` holding the lock exclusively, then goes back to shared. Fails with
    /// [`CacheError::Busy`] without waiting if another process has the store open.
    pub(crate) fn with_exclusive<T>(
        &self,
        root: &Path,
        f: impl FnOnce() -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        let got = FileExt::try_lock_exclusive(&self.file).map_err(io_err("lock", &self.path))?;
        if !got {
            // A failed conversion drops our shared lock; take it back.
            FileExt::lock_shared(&self.file).map_err(io_err("lock shared", &self.path))?;
            return Err(CacheError::Busy {
                root: root.to_path_buf(),
            });
        }
        let res = f();
        FileExt::lock_shared(&self.file).map_err(io_err("lock shared", &self.path))?;
        res
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlock explicitly to be prompt.
        let _ = FileExt::unlock(&self.file);
    }
}
