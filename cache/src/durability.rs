//! Deferred durability of snapshots: one `syncfs` per store handle (per build) instead of one
//! per committed snapshot, with a journal that keeps the crash-safety promise.
//!
//! A whole-filesystem `syncfs` per RUN flushed every dirty page of the filesystem, other
//! processes' included (5–75 ms each on a shared machine), and an fsync per file of a layer
//! costs a device flush per file. Instead, before a snapshot is published (renamed into
//! `snapshots/`) without being synced, its id is appended to this handle's journal,
//! `tmp/unsynced-<pid>-…`, and the journal is fdatasync'ed: one small write and flush per
//! snapshot. When the handle is dropped (or [`crate::Store::sync`] is called) one `syncfs`
//! makes every published snapshot durable and the journal is removed.
//!
//! Invariant: a snapshot directory under `snapshots/` is complete and durable unless its id is
//! listed in a journal in `tmp/`. A journal that outlives its process (rbuild killed, or the
//! machine lost power before the final sync) is handled when the store is next opened with
//! nobody else using it (`Store::open` → `clean_tmp`): the snapshots it lists are removed, as
//! they may be incomplete after a power loss. That costs only cache hits: every user of a
//! snapshot (cache lookups, base image unpacking, exports) checks that it exists and remakes it
//! otherwise. Records that name a removed snapshot are treated as misses.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{io_err, CacheError};
use crate::fsutil;
use crate::SnapshotId;

/// File name prefix of journals in `tmp/`.
pub(crate) const JOURNAL_PREFIX: &str = "unsynced-";

/// The journal of one store handle and whether anything awaits the final sync.
#[derive(Debug)]
pub(crate) struct Pending {
    tmp_dir: PathBuf,
    snapshots_dir: PathBuf,
    journal: Mutex<Option<Journal>>,
}

#[derive(Debug)]
struct Journal {
    path: PathBuf,
    file: File,
}

impl Pending {
    pub(crate) fn new(tmp_dir: &Path, snapshots_dir: &Path) -> Pending {
        Pending {
            tmp_dir: tmp_dir.to_path_buf(),
            snapshots_dir: snapshots_dir.to_path_buf(),
            journal: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Journal>> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Durably notes that snapshot `id` is about to be published unsynced. Must return before
    /// the rename.
    pub(crate) fn note(&self, id: &SnapshotId) -> Result<(), CacheError> {
        let mut guard = self.lock();
        if guard.is_none() {
            let path = self.tmp_dir.join(fsutil::unique_name(JOURNAL_PREFIX));
            let file = OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(&path)
                .map_err(io_err("create snapshot journal", &path))?;
            // The journal's name must be durable before any rename it covers.
            fsutil::fsync_dir(&self.tmp_dir)?;
            *guard = Some(Journal { path, file });
        }
        let Some(journal) = guard.as_mut() else {
            return Ok(());
        };
        journal
            .file
            .write_all(format!("{}\n", id.0.hex()).as_bytes())
            .and_then(|()| journal.file.sync_data())
            .map_err(io_err("append to snapshot journal", &journal.path))
    }

    /// Makes every snapshot published through this handle durable (one `syncfs`) and removes
    /// the journal. A no-op when nothing is pending.
    pub(crate) fn sync(&self) -> Result<(), CacheError> {
        let mut guard = self.lock();
        let Some(journal) = guard.take() else {
            return Ok(());
        };
        if let Err(e) = fsutil::syncfs(&self.snapshots_dir) {
            *guard = Some(journal);
            return Err(e);
        }
        // Not synced: should the removal be lost, recovery drops durable snapshots, which
        // costs cache hits only.
        fs::remove_file(&journal.path).map_err(io_err("remove snapshot journal", &journal.path))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Nobody to tell; a journal left behind is handled by the next exclusive open.
        let _ = self.sync();
    }
}

/// Whether `name` (an entry of `tmp/`) is a snapshot journal.
pub(crate) fn is_journal(name: &Path) -> bool {
    name.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(JOURNAL_PREFIX))
}

/// Removes the snapshots listed in the journal at `path` (left by a process that did not
/// reach its final sync), then the journal. Only while nobody else has the store open.
pub(crate) fn recover(path: &Path, snapshots_dir: &Path) -> Result<(), CacheError> {
    let text = fs::read_to_string(path).map_err(io_err("read snapshot journal", path))?;
    let mut removed = false;
    for hex in text.lines().map(str::trim) {
        // Only plain hex names: never a path that could leave `snapshots/`.
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let snap = snapshots_dir.join(hex);
        if fs::symlink_metadata(&snap).is_ok() {
            fsutil::remove_tree(&snap)?;
            removed = true;
        }
    }
    if removed {
        fsutil::fsync_dir(snapshots_dir)?;
    }
    fs::remove_file(path).map_err(io_err("remove snapshot journal", path))
}
