//! Deferred durability of snapshots: one `syncfs` per store handle (per build) instead of one
//! per committed snapshot, with a journal that keeps the crash-safety promise.
//!
//! A whole-filesystem `syncfs` per RUN flushed every dirty page of the filesystem, other
//! processes' included (5–75 ms each on a shared machine), and an fsync per file of a layer
//! costs a device flush per file; even an fdatasync of a journal line per snapshot cost
//! 0.3–0.6 ms per RUN. Instead, before a handle publishes its first snapshot, it creates its
//! journal, `tmp/unsynced-<pid>-…`, whose first line is the journal's own timestamp as the
//! filesystem recorded it, and makes the journal durable (one flush per build). Each snapshot
//! the handle then publishes (renames into `snapshots/`) without syncing first has its ctime
//! set to the present (`chown(-1, -1)`), so its ctime is not older than the journal's; its id
//! is also appended to the journal (unsynced: exact after a process kill, which loses no
//! written data). When the handle is dropped (or [`crate::Store::sync`] is called) one
//! `syncfs` makes every published snapshot durable and the journal is removed.
//!
//! Invariant: a snapshot directory under `snapshots/` is complete and durable unless a journal
//! in `tmp/` lists it or started no later than the directory's ctime. A journal that
//! outlives its process (rbuild killed, or the machine lost power before the final sync) is
//! handled when the store is next opened with nobody else using it (`Store::open` →
//! `clean_tmp`): the snapshots it covers are removed, as they may be incomplete after a power
//! loss. That costs only cache hits (snapshots that other handles made and synced after the
//! journal's start are removed too): every user of a snapshot (cache lookups, base image
//! unpacking, exports) checks that it exists and remakes it otherwise. Records that name a
//! removed snapshot are treated as misses.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{io_err, CacheError};
use crate::fsutil;
use crate::SnapshotId;

/// File name prefix of journals in `tmp/`.
pub(crate) const JOURNAL_PREFIX: &str = "unsynced-";

/// Keyword of a journal's first line: `since <secs> <nanos>`, the journal's mtime.
const SINCE: &str = "since";

/// The journal of one store handle and whether anything awaits the final sync.
#[derive(Debug)]
pub(crate) struct Pending {
    tmp_dir: PathBuf,
    snapshots_dir: PathBuf,
    journal: Mutex<Option<Journal>>,
    /// Snapshots this handle renamed into `snapshots/` itself (not found there already).
    published: Mutex<HashSet<SnapshotId>>,
}

#[derive(Debug)]
struct Journal {
    path: PathBuf,
    file: File,
    /// A snapshot was published under this journal (else the final sync has nothing to do).
    published: bool,
}

impl Pending {
    pub(crate) fn new(tmp_dir: &Path, snapshots_dir: &Path) -> Pending {
        Pending {
            tmp_dir: tmp_dir.to_path_buf(),
            snapshots_dir: snapshots_dir.to_path_buf(),
            journal: Mutex::new(None),
            published: Mutex::new(HashSet::new()),
        }
    }

    /// Notes that this handle published snapshot `id` (its rename made it appear).
    pub(crate) fn published(&self, id: &SnapshotId) {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*id);
    }

    /// Forgets that this handle published `id`; returns whether it had.
    pub(crate) fn take_published(&self, id: &SnapshotId) -> bool {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Journal>> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn create(&self) -> Result<Journal, CacheError> {
        let path = self.tmp_dir.join(fsutil::unique_name(JOURNAL_PREFIX));
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create snapshot journal", &path))?;
        let written = file
            .metadata()
            .map_err(io_err("stat snapshot journal", &path))
            .and_then(|started| {
                let line = format!("{SINCE} {} {}\n", started.mtime(), started.mtime_nsec());
                file.write_all(line.as_bytes())
                    .and_then(|()| file.sync_data())
                    .map_err(io_err("write snapshot journal", &path))
            })
            // The journal's name must be durable before any rename it covers.
            .and_then(|()| fsutil::fsync_dir(&self.tmp_dir));
        if let Err(e) = written {
            // No snapshot is published under it: it covers nothing (e.g. the disk is full).
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(Journal {
            path,
            file,
            published: false,
        })
    }

    /// Notes that snapshot `id` is about to be published unsynced. Must return before the
    /// rename. Not synced: the journal's start already covers the snapshot.
    pub(crate) fn note(&self, id: &SnapshotId) -> Result<(), CacheError> {
        let mut guard = self.lock();
        if guard.is_none() {
            *guard = Some(self.create()?);
        }
        let Some(journal) = guard.as_mut() else {
            return Ok(());
        };
        journal.published = true;
        journal
            .file
            .write_all(format!("{}\n", id.0.hex()).as_bytes())
            .map_err(io_err("append to snapshot journal", &journal.path))
    }

    /// Makes every snapshot published through this handle durable (one `syncfs`) and removes
    /// the journal. A no-op when nothing is pending.
    pub(crate) fn sync(&self) -> Result<(), CacheError> {
        let mut guard = self.lock();
        let Some(journal) = guard.take() else {
            return Ok(());
        };
        if journal.published {
            if let Err(e) = fsutil::syncfs(&self.snapshots_dir) {
                *guard = Some(journal);
                return Err(e);
            }
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

/// Removes the snapshots the journal at `path` covers (left by a process that did not reach
/// its final sync): those it lists and, when it has its start line, every snapshot whose
/// ctime is not older than that start (both come from the filesystem's clock, so a directory
/// created later never looks older); then the journal. Only while nobody else has the store
/// open.
pub(crate) fn recover(path: &Path, snapshots_dir: &Path) -> Result<(), CacheError> {
    let text = fs::read_to_string(path).map_err(io_err("read snapshot journal", path))?;
    let mut since = None;
    let mut doomed = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(stamp) = line.strip_prefix(SINCE) {
            let mut parts = stamp.split_whitespace().map(str::parse::<i64>);
            if let (Some(Ok(secs)), Some(Ok(nanos))) = (parts.next(), parts.next()) {
                since = Some((secs, nanos));
            }
            continue;
        }
        // Only plain hex names: never a path that could leave `snapshots/`.
        if !line.is_empty() && line.bytes().all(|b| b.is_ascii_hexdigit()) {
            doomed.push(snapshots_dir.join(line));
        }
    }
    if let Some((secs, nanos)) = since {
        let threshold = (secs, nanos);
        for snap in fsutil::list_dir(snapshots_dir)? {
            let changed = fs::symlink_metadata(&snap).map(|md| (md.ctime(), md.ctime_nsec()));
            if changed.is_ok_and(|c| c >= threshold) {
                doomed.push(snap);
            }
        }
    }
    let mut removed = false;
    for snap in doomed {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_removes_what_the_journal_lists_or_is_newer_than_its_start() {
        let t = tempfile::tempdir().unwrap();
        let (tmp, snaps) = (t.path().join("tmp"), t.path().join("snapshots"));
        fs::create_dir_all(&tmp).unwrap();
        fs::create_dir_all(&snaps).unwrap();
        let old = snaps.join("aa");
        let listed = snaps.join("bb");
        fs::create_dir(&old).unwrap();
        fs::create_dir(&listed).unwrap();
        // A coarse filesystem clock ticks every few ms: make sure the journal starts later.
        std::thread::sleep(std::time::Duration::from_millis(30));
        let pending = Pending::new(&tmp, &snaps);
        pending
            .note(&SnapshotId(rbuild_types::Digest::of(b"x")))
            .unwrap();
        let journal = fsutil::list_dir(&tmp).unwrap().pop().unwrap();
        let mut text = fs::read_to_string(&journal).unwrap();
        assert!(text.starts_with("since "), "{text}");
        // An id listed but made before the journal (possible only in tests), and a snapshot
        // made after the journal's start but never listed (its id line was lost).
        text.push_str("bb\n");
        fs::write(&journal, &text).unwrap();
        let newer = snaps.join("cc");
        fs::create_dir(&newer).unwrap();
        std::mem::forget(pending); // as if the process died: no sync, journal left
        recover(&journal, &snaps).unwrap();
        assert!(old.exists(), "older and unlisted: kept");
        assert!(!listed.exists(), "listed: removed");
        assert!(!newer.exists(), "newer than the journal: removed");
        assert!(!journal.exists());
    }

    #[test]
    fn a_journal_without_a_start_line_removes_only_what_it_lists() {
        let t = tempfile::tempdir().unwrap();
        let snaps = t.path().join("snapshots");
        fs::create_dir_all(snaps.join("aa")).unwrap();
        fs::create_dir_all(snaps.join("bb")).unwrap();
        let journal = t.path().join("unsynced-old");
        fs::write(&journal, "bb\n../escape\n").unwrap();
        recover(&journal, &snaps).unwrap();
        assert!(snaps.join("aa").exists());
        assert!(!snaps.join("bb").exists());
    }
}
