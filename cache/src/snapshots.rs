//! Snapshots: unpacked layers in overlayfs upper-dir format (whiteouts are 0:0 character
//! devices, opaque directories carry `trusted.overlay.opaque=y`).
//!
//! Lifecycle ([`Snapshots`], the `snapshots/` directory): [`Snapshots::prepare`] makes `tmp/snap-…/{upper,work}`; the caller fills
//! `upper` (by running a command over an overlay, or unpacking a tar); then
//! [`Snapshots::commit`] journals the id and renames `upper` to `snapshots/<hex>` in one
//! step, and leaves the rest of the staging for the handle to remove when it syncs (module
//! `janitor`); the store handle syncs once for all its snapshots (module `durability`).
//! [`Snapshots::replace`] publishes a step run again (`--no-cache`) over the snapshot
//! its key already has: the two are exchanged in one rename, and the replaced one stays in
//! `tmp/` until the store is next opened exclusively (a concurrent build may still read it),
//! unless an image's layer blob is still to be made from it: then it is kept as the snapshot
//! named by that layer's diff_id.
//! [`Snapshots::retract`] takes back a snapshot whose step could not be recorded.
//! Invariant: a directory under `snapshots/` is complete, and durable unless a journal in
//! `tmp/` covers it; a [`PreparedSnapshot`] that is dropped instead of committed removes its
//! staging at once; a committed one's is gone when the handle syncs or is dropped.

use std::fs;
use std::path::PathBuf;

use crate::error::{io_err, CacheError};
use crate::fsutil;
use crate::store::Store;
use crate::SnapshotId;

/// Staging for a new snapshot: two empty directories on the store's filesystem.
#[derive(Debug)]
pub struct PreparedSnapshot {
    /// Receives the layer's content; becomes the snapshot on commit.
    pub upper: PathBuf,
    /// Scratch directory for overlayfs (`workdir=`); discarded on commit.
    pub work: PathBuf,
    /// The staging directory holding both; removed on drop.
    base: PathBuf,
}

impl PreparedSnapshot {
    /// The staging directory, which the caller now removes instead of `Drop`.
    fn disarm(mut self) -> PathBuf {
        std::mem::take(&mut self.base)
    }
}

impl Drop for PreparedSnapshot {
    fn drop(&mut self) {
        if !self.base.as_os_str().is_empty() {
            let _ = fsutil::remove_tree(&self.base);
        }
    }
}

/// The snapshot directory `snapshots/`. Get one with [`Store::snapshots`].
#[derive(Clone, Copy, Debug)]
pub struct Snapshots<'a> {
    pub(crate) store: &'a Store,
}

impl Snapshots<'_> {
    /// The directory of a committed snapshot; `None` if it is not (yet) in the store.
    pub fn path(&self, id: &SnapshotId) -> Option<PathBuf> {
        let p = self.store.snapshots_dir.join(id.0.hex());
        match fs::symlink_metadata(&p) {
            Ok(md) if md.is_dir() => Some(p),
            _ => None,
        }
    }

    /// Makes fresh, empty `upper` and `work` directories under `tmp/`.
    pub fn prepare(&self) -> Result<PreparedSnapshot, CacheError> {
        let tmp_dir = &self.store.tmp_dir;
        fsutil::spread_subdirs(tmp_dir);
        let base = loop {
            let base = tmp_dir.join(fsutil::unique_name("snap"));
            match fs::create_dir(&base) {
                Ok(()) => break base,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("create staging directory", base)(e)),
            }
        };
        let prepared = PreparedSnapshot {
            upper: base.join("upper"),
            work: base.join("work"),
            base,
        };
        // From here on, Drop of `prepared` cleans up if creating a subdirectory fails.
        fs::create_dir(&prepared.upper).map_err(io_err("create directory", &prepared.upper))?;
        fs::create_dir(&prepared.work).map_err(io_err("create directory", &prepared.work))?;
        Ok(prepared)
    }

    /// Publishes `p.upper` as snapshot `id` and returns its path. If `id` is already in the
    /// store (another build made the same layer), `p` is discarded and the existing path is
    /// returned: equal ids mean equal content.
    pub fn commit(&self, p: PreparedSnapshot, id: &SnapshotId) -> Result<PathBuf, CacheError> {
        let dest = self.store.snapshots_dir.join(id.0.hex());
        if self.path(id).is_some() {
            self.store.janitor.remove_later(p.disarm());
            return Ok(dest);
        }
        // A tar form recorded for an earlier snapshot of this id (one a crash's recovery
        // removed, its record kept) does not describe this one.
        if self.store.layer_info().get(id)?.is_some() {
            self.store
                .layer_info()
                .forget(std::slice::from_ref(id), crate::tables::Durable::Soon)?;
        }
        // Published unsynced, but journaled first: the handle's final sync (or, after a crash,
        // the next exclusive open) settles it. See the `durability` module.
        self.store.pending.note(id)?;
        // Its ctime now, after the journal's start: the journal covers it even if the id line
        // is lost (chown to -1:-1 changes nothing but the ctime).
        std::os::unix::fs::lchown(&p.upper, None, None)
            .map_err(io_err("mark the snapshot as journaled", &p.upper))?;
        if fsutil::rename_noreplace(&p.upper, &dest)? {
            self.store.pending.published(id);
        }
        // What is left (the overlay work dir) is removed at the end, off the caller's path.
        self.store.janitor.remove_later(p.disarm());
        Ok(dest)
    }

    /// Publishes `p.upper` as snapshot `id` like [`Snapshots::commit`], but replaces a
    /// snapshot already published under `id`: a step that ran again despite its key being
    /// cached (`--no-cache`) must give its fresh result from now on. The replaced snapshot is
    /// exchanged into the staging directory in one `renameat2(RENAME_EXCHANGE)` and left
    /// there: another build may be reading it, so it is removed only when the store is next
    /// opened exclusively. Its recorded tar form (diff_id) is forgotten.
    pub fn replace(&self, p: PreparedSnapshot, id: &SnapshotId) -> Result<PathBuf, CacheError> {
        let dest = self.store.snapshots_dir.join(id.0.hex());
        if self.path(id).is_none() {
            return self.commit(p, id);
        }
        self.store.pending.note(id)?;
        std::os::unix::fs::lchown(&p.upper, None, None)
            .map_err(io_err("mark the snapshot as journaled", &p.upper))?;
        let unwritten = self.unwritten_layer(id)?;
        if let Some((diff_id, info)) = &unwritten {
            // Recorded first, so a blob being made meanwhile finds one of the two names.
            self.store.layer_info().set(&SnapshotId(*diff_id), info)?;
        }
        // Not durable at once: if a crash loses it, the journal's recovery removes the new
        // snapshot too, and its next commit forgets the record (see `commit`).
        self.store
            .layer_info()
            .forget(std::slice::from_ref(id), crate::tables::Durable::Soon)?;
        fsutil::exchange(&p.upper, &dest)?;
        // `p.upper` now holds the replaced snapshot. An image may name its layer by a blob that
        // was never written: that snapshot is the only way to make it, so it stays, named by
        // its diff_id (as a base layer is).
        if let Some((diff_id, _)) = unwritten {
            self.store.pending.note(&SnapshotId(diff_id))?;
            let at = self.store.snapshots_dir.join(diff_id.hex());
            fsutil::rename_noreplace(&p.upper, &at)?;
        }
        // Otherwise the staging stays in `tmp/` for the next exclusive open to remove (see
        // `store::clean_tmp`), never removed under a reader.
        let _kept = p.disarm();
        Ok(dest)
    }

    /// The recorded tar form of snapshot `id` when no blob of it is written and no other
    /// snapshot is named by its diff_id: what [`Snapshots::replace`] must keep.
    fn unwritten_layer(
        &self,
        id: &SnapshotId,
    ) -> Result<Option<(rbuild_types::Digest, crate::LayerInfo)>, CacheError> {
        let Some(info) = self.store.layer_info().get(id)? else {
            return Ok(None);
        };
        let kept = SnapshotId(info.diff_id);
        if self.store.blobs().has(&info.diff_id) || self.path(&kept).is_some() {
            return Ok(None);
        }
        Ok(Some((info.diff_id, info)))
    }

    /// Takes snapshot `id` back out of the store because the step that made it could not be
    /// recorded (say, the index could not grow on a full disk): nothing would name it, and
    /// only `prune --all` would find it. Only a snapshot this handle published itself, and
    /// only while no cache record is keyed by its id, is taken back: it leaves `snapshots/`
    /// in one rename (never half-removed in place) and is deleted at once, to give the room
    /// back. Returns whether it was taken back.
    pub fn retract(&self, id: &SnapshotId) -> Result<bool, CacheError> {
        if !self.store.pending.take_published(id) {
            return Ok(false);
        }
        if self.store.index().lookup(&id.0)?.is_some() {
            // Another build recorded the same step meanwhile: it is in use.
            return Ok(false);
        }
        let dest = self.store.snapshots_dir.join(id.0.hex());
        let aside = self.store.tmp_dir.join(fsutil::unique_name("retracted"));
        match fs::rename(&dest, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("move aside", dest)(e)),
        }
        if fsutil::remove_tree(&aside).is_err() {
            // What cannot go now goes when the handle settles (or on the next open).
            self.store.janitor.remove_later(aside);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CacheRecord;
    use rbuild_types::Digest;

    fn commit(store: &Store, name: &[u8]) -> SnapshotId {
        let id = SnapshotId(Digest::of(name));
        let p = store.snapshots().prepare().unwrap();
        fs::write(p.upper.join("f"), name).unwrap();
        store.snapshots().commit(p, &id).unwrap();
        id
    }

    #[test]
    fn a_new_snapshot_under_an_old_id_drops_the_old_tar_form() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = commit(&store, b"step");
        let info = crate::LayerInfo {
            diff_id: Digest::of(b"old tar"),
            size: 1024,
        };
        store.layer_info().set(&id, &info).unwrap();
        // As a crash's recovery leaves it: the snapshot removed, its record kept.
        fsutil::remove_tree(&store.snapshots().path(&id).unwrap()).unwrap();
        assert_eq!(store.layer_info().get(&id).unwrap(), Some(info));
        commit(&store, b"step");
        assert_eq!(store.layer_info().get(&id).unwrap(), None);
    }

    #[test]
    fn only_an_unrecorded_snapshot_this_handle_published_is_retracted() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();

        let snapshots = store.snapshots();
        let id = commit(&store, b"unrecorded");
        assert!(snapshots.retract(&id).unwrap());
        assert!(snapshots.path(&id).is_none());
        assert!(!snapshots.retract(&id).unwrap(), "only once");

        // Recorded (by another build meanwhile): kept.
        let recorded = commit(&store, b"recorded");
        let record = CacheRecord {
            layers: vec![recorded],
            created_unix: 1,
            name: "RUN x".into(),
            last_used_unix: 0,
        };
        store.index().record(&recorded.0, &record).unwrap();
        assert!(!snapshots.retract(&recorded).unwrap());
        assert!(snapshots.path(&recorded).is_some());

        // Already in the store when this handle committed it (another build made it): kept.
        let theirs = SnapshotId(Digest::of(b"theirs"));
        fs::create_dir(store.snapshots_dir.join(theirs.0.hex())).unwrap();
        let p = snapshots.prepare().unwrap();
        snapshots.commit(p, &theirs).unwrap();
        assert!(!snapshots.retract(&theirs).unwrap());
        assert!(snapshots.path(&theirs).is_some());

        // Nothing of the retracted one is left in tmp/ once the handle settles.
        store.sync().unwrap();
        assert_eq!(fs::read_dir(&store.tmp_dir).unwrap().count(), 0);
    }
}
