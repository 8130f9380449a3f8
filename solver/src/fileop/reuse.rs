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

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::fcntl::AtFlags;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use rbuild_cache::{Donor, DonorFile};
use rbuild_context::{ContextEntry, FileStamp};

use super::write::{link_at, CopiedFrom, FileAttrs};

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

    /// Whether an earlier snapshot's files can be linked.
    pub fn has_donor(&self) -> bool {
        self.donor.is_some()
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

    /// Links `up` from the donor when the donor has this very file; true if it did. `dirs`
    /// keeps the last file's two directories open, so a run of files in one directory is
    /// stat'ed and linked relative to them (`fstatat`, `linkat`) instead of by whole paths.
    pub(crate) fn try_link(
        &self,
        dirs: &mut LinkDirs,
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
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Ok(false);
        };
        let Some((from_dir, to_dir)) = dirs.open(dir, &self.upper, parent) else {
            return Ok(false);
        };
        let on_disk = match fstatat(Some(from_dir), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(_) => return Ok(false),
        };
        let same = SFlag::from_bits_truncate(on_disk.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
            && u64::try_from(on_disk.st_size).ok() == Some(want.size)
            && on_disk.st_mode & 0o7777 == want.mode
            && on_disk.st_uid == want.uid
            && on_disk.st_gid == want.gid
            && on_disk
                .st_mtime
                .saturating_mul(1_000_000_000)
                .saturating_add(on_disk.st_mtime_nsec)
                == want.mtime_ns;
        if !same || !link_at(from_dir, to_dir, name)? {
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

/// The directories of the last file [`CopyReuse::try_link`] looked at, open: its donor
/// snapshot's and the upper dir's (one per worker running through a batch of files, which come
/// in directory order).
#[derive(Debug, Default)]
pub(crate) struct LinkDirs {
    /// The directory relative to the snapshots, and its two descriptors (none when either
    /// could not be opened: the donor lacks it, so nothing in it is linked).
    open: Option<(PathBuf, Option<(OwnedFd, OwnedFd)>)>,
}

impl LinkDirs {
    /// The donor's and the upper dir's descriptors of directory `parent` (relative).
    fn open(&mut self, donor: &Path, upper: &Path, parent: &Path) -> Option<(RawFd, RawFd)> {
        if self.open.as_ref().map(|(p, _)| p.as_path()) != Some(parent) {
            let fds = open_dir(&donor.join(parent)).zip(open_dir(&upper.join(parent)));
            self.open = Some((parent.to_path_buf(), fds));
        }
        let (_, fds) = self.open.as_ref()?;
        fds.as_ref().map(|(d, u)| (d.as_raw_fd(), u.as_raw_fd()))
    }
}

/// A directory opened only to name files relative to it (`O_PATH`).
fn open_dir(path: &Path) -> Option<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let fd = open(path, flags, Mode::empty()).ok()?;
    // SAFETY: `open` just returned this descriptor, owned by no one else.
    Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}
