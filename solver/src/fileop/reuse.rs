//! Reusing an earlier snapshot's files in a COPY from a build context (see
//! `rbuild_cache::CopyDonors`): when the same COPY ran before and left a donor record, each
//! selected regular file whose stamp (entry digest and mtime) and written attributes (mode,
//! owner) equal the donor file's is hard-linked from the donor snapshot instead of copied. The
//! layer is the same either way: a tar entry holds the path, mode, owner, size, mtime and
//! bytes, all equal, and never the link count (the layer writer only turns an inode met twice
//! *within* one layer into a hardlink entry, and each donor file is linked once).
//!
//! Every file the copy writes (linked or copied) is recorded, so this run becomes the donor of
//! the next. A copied file is recorded only when what the copy read is what the key hashed
//! (same size and mtime as the walk found), so a file changed between keying and copying never
//! enters a record under the old digest.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rbuild_cache::{Donor, DonorFile};
use rbuild_context::{ContextEntry, FileStamp};

use super::write::{link_file, CopiedFrom, FileAttrs};

/// Donor and record of one COPY (see the module docs).
#[derive(Debug)]
pub struct CopyReuse {
    /// The donor snapshot's directory and record, when one is usable.
    donor: Option<(PathBuf, Donor)>,
    /// The upper dir this copy writes (what recorded paths are relative to).
    upper: PathBuf,
    recorded: Mutex<Vec<(Vec<u8>, DonorFile)>>,
}

impl CopyReuse {
    /// Reuse for a copy writing into `upper`, from `donor` (its snapshot at `donor_dir`).
    pub fn new(upper: &Path, donor: Option<(PathBuf, Donor)>) -> CopyReuse {
        CopyReuse {
            donor,
            upper: upper.to_path_buf(),
            recorded: Mutex::new(Vec::new()),
        }
    }

    /// What this copy wrote, for the next run's donor record.
    pub fn into_record(self) -> Vec<(Vec<u8>, DonorFile)> {
        self.recorded
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn rel<'p>(&self, up: &'p Path) -> Option<&'p Path> {
        up.strip_prefix(&self.upper).ok()
    }

    /// The file `up` (upper path) would be written with: its donor record, for `entry` with
    /// `stamp`, written with `attrs` (an owner is required: without one, files keep the
    /// creating process's, which a record cannot promise).
    fn wanted(entry: &ContextEntry, stamp: &FileStamp, attrs: FileAttrs) -> Option<DonorFile> {
        let (uid, gid) = attrs.owner?;
        Some(DonorFile {
            digest: stamp.digest,
            mtime_ns: stamp.mtime_ns,
            size: entry.size,
            mode: attrs.mode & 0o7777,
            uid,
            gid,
        })
    }

    /// Links `up` from the donor when the donor has this very file; true if it did.
    pub(crate) fn try_link(
        &self,
        up: &Path,
        entry: &ContextEntry,
        stamp: &FileStamp,
        attrs: FileAttrs,
    ) -> std::io::Result<bool> {
        let (Some((dir, donor)), Some(rel)) = (&self.donor, self.rel(up)) else {
            return Ok(false);
        };
        let Some(want) = Self::wanted(entry, stamp, attrs) else {
            return Ok(false);
        };
        if donor.files.get(rel.as_os_str().as_bytes()) != Some(&want) {
            return Ok(false);
        }
        let from = dir.join(rel);
        let on_disk = match std::fs::symlink_metadata(&from) {
            Ok(m) => m,
            Err(_) => return Ok(false),
        };
        let same = on_disk.is_file()
            && on_disk.len() == want.size
            && on_disk.mode() & 0o7777 == want.mode
            && on_disk.uid() == want.uid
            && on_disk.gid() == want.gid
            && on_disk
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(on_disk.mtime_nsec())
                == want.mtime_ns;
        if !same || !link_file(&from, up)? {
            return Ok(false);
        }
        self.note(rel, want);
        Ok(true)
    }

    /// Records the file copied to `up` when it is what the key hashed.
    pub(crate) fn copied(
        &self,
        up: &Path,
        entry: &ContextEntry,
        stamp: &FileStamp,
        attrs: FileAttrs,
        from: CopiedFrom,
    ) {
        let (Some(rel), Some(want)) = (self.rel(up), Self::wanted(entry, stamp, attrs)) else {
            return;
        };
        if from.size == want.size && from.mtime_ns == want.mtime_ns {
            self.note(rel, want);
        }
    }

    fn note(&self, rel: &Path, file: DonorFile) {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((rel.as_os_str().as_bytes().to_vec(), file));
    }
}
