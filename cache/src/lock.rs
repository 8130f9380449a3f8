//! Cross-process locking of a store with `flock(2)` (through `fs4`).
//!
//! Two lock files live in the store root:
//! - `lock`: every open [`crate::Store`] holds a **shared** lock on it for its whole life (an
//!   open store is a build or command in progress). Operations that delete what others may be
//!   using (`prune_all`, cleaning `tmp/` on open) need it **exclusively**, and only try: they
//!   never wait for a build to finish.
//! - `index.lock`: taken exclusively around each index transaction, because the embedded
//!   database file may be opened by one process at a time.
//!
//! `flock` locks belong to an open file description, so threads sharing one `Store` share
//! its locks; an in-process mutex serialises index transactions between those threads.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use fs4::fs_std::FileExt;

use crate::error::{io_err, CacheError};

fn open_lock_file(path: &Path) -> Result<File, CacheError> {
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

/// Serialises index transactions across threads and processes.
#[derive(Debug)]
pub(crate) struct IndexLock {
    path: PathBuf,
    file: Mutex<File>,
}

/// Held while an index transaction runs; releases the file lock on drop.
pub(crate) struct IndexGuard<'a> {
    file: MutexGuard<'a, File>,
}

impl IndexLock {
    pub(crate) fn open(path: &Path) -> Result<IndexLock, CacheError> {
        Ok(IndexLock {
            path: path.to_path_buf(),
            file: Mutex::new(open_lock_file(path)?),
        })
    }

    /// Blocks until this thread holds the index exclusively.
    pub(crate) fn lock(&self) -> Result<IndexGuard<'_>, CacheError> {
        // A poisoned mutex only means another thread panicked mid-transaction; redb rolled
        // that transaction back, so the file is still consistent.
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        FileExt::lock_exclusive(&*file).map_err(io_err("lock", &self.path))?;
        Ok(IndexGuard { file })
    }
}

impl Drop for IndexGuard<'_> {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&*self.file);
    }
}
