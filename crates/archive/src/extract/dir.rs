//! [`DirSink`]: extraction into a plain directory, confined to it by the kernel. Build
//! contexts from archives and image archives (`load`) are unpacked here.
//!
//! Every operation is relative to a directory descriptor: an entry's parent is opened with
//! `openat2(RESOLVE_BENEATH)` from the root, so symlinks the archive made are followed while
//! they stay inside and an entry reached through one leading out (absolute, or `..` above
//! the root) is refused ([`DirSinkError::Escapes`]); missing parents are created (`0755`
//! less the umask). The last component is never followed: an entry replaces a non-directory
//! in its place, a directory entry merges with a directory, and a non-directory entry on a
//! directory is an error. Modes are kept (setuid and friends included), owners only when
//! asked (root), mtimes of files and links at once and of directories at the end (adding
//! entries changes them). Device nodes and FIFOs are left out, as a context directory's walk
//! leaves them out; xattrs are not applied.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rbuild_types::ByteString;
use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps,
};
use rustix::io::Errno;

use super::{Entry, EntryKind, Sink};
use crate::error::{show, PathError};
use crate::name::EntryPath;

/// Why [`DirSink`] could not place an entry.
#[derive(Debug, thiserror::Error)]
pub enum DirSinkError {
    /// The entry would be written through a symlink leading out of the root.
    #[error("archive entry {}: {detail}", show(entry))]
    Escapes {
        entry: ByteString,
        detail: &'static str,
    },
    #[error(transparent)]
    Io(PathError),
}

/// A plain directory that entries are extracted into (see the module docs).
pub struct DirSink {
    root: OwnedFd,
    root_path: PathBuf,
    owners: bool,
    dir_times: Vec<(EntryPath, u64)>,
}

const DIR_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

fn timestamps(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// A uid or gid as the kernel takes it (`-1` means "unchanged" there, so it is refused).
fn id(value: u64) -> io::Result<u32> {
    u32::try_from(value)
        .ok()
        .filter(|&v| v != u32::MAX)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("owner id {value} out of range"),
            )
        })
}

impl DirSink {
    /// Extracts into directory `root` (which must exist). `owners`: give entries the archive's
    /// owners (needs root).
    pub fn new(root: &Path, owners: bool) -> Result<DirSink, DirSinkError> {
        let fd = rfs::open(root, DIR_FLAGS, Mode::empty())
            .map_err(|e| DirSinkError::Io(PathError::on("open directory", root)(e.into())))?;
        Ok(DirSink {
            root: fd,
            root_path: root.to_path_buf(),
            owners,
            dir_times: Vec::new(),
        })
    }

    fn io(&self, op: &'static str, rel: &Path) -> impl FnOnce(Errno) -> DirSinkError {
        let on = PathError::on(op, self.root_path.join(rel));
        move |e| DirSinkError::Io(on(e.into()))
    }

    /// Opens directory `rel` beneath the root, creating what is missing when `create`.
    fn open_dir(&self, rel: &Path, create: bool, entry: &Entry) -> Result<OwnedFd, DirSinkError> {
        let escapes = || DirSinkError::Escapes {
            entry: entry.name.clone(),
            detail: "it would be written through a symlink leading out of the root",
        };
        let target = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        match rfs::openat2(&self.root, target, DIR_FLAGS, Mode::empty(), BENEATH) {
            Ok(fd) => return Ok(fd),
            Err(Errno::XDEV) => return Err(escapes()),
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(self.io("open directory", rel)(e)),
        }
        let mut dir = rfs::openat2(&self.root, ".", DIR_FLAGS, Mode::empty(), BENEATH)
            .map_err(self.io("open directory", Path::new("")))?;
        let mut prefix = PathBuf::new();
        for part in rel.components() {
            let Component::Normal(name) = part else {
                continue;
            };
            prefix.push(name);
            dir = match rfs::openat2(&self.root, &prefix, DIR_FLAGS, Mode::empty(), BENEATH) {
                Ok(fd) => fd,
                Err(Errno::XDEV) => return Err(escapes()),
                Err(Errno::NOENT) => {
                    rfs::mkdirat(&dir, name, Mode::from_raw_mode(0o755))
                        .map_err(self.io("create directory", &prefix))?;
                    rfs::openat(&dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
                        .map_err(self.io("open directory", &prefix))?
                }
                Err(e) => return Err(self.io("open directory", &prefix)(e)),
            };
        }
        Ok(dir)
    }

    /// Removes a non-directory at `name` in `parent`; a directory there is an error.
    fn clear(
        &self,
        parent: &OwnedFd,
        name: &std::ffi::OsStr,
        rel: &Path,
    ) -> Result<(), DirSinkError> {
        match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.io("stat", rel)(e)),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                Err(self.io("replace", rel)(Errno::ISDIR))
            }
            Ok(_) => rfs::unlinkat(parent, name, AtFlags::empty()).map_err(self.io("remove", rel)),
        }
    }

    fn chown_at(
        &self,
        parent: &OwnedFd,
        name: &std::ffi::OsStr,
        e: &Entry,
    ) -> Result<(), DirSinkError> {
        if !self.owners {
            return Ok(());
        }
        let rel = e.path.as_path();
        let (uid, gid) = match (id(e.uid), id(e.gid)) {
            (Ok(u), Ok(g)) => (u, g),
            (Err(source), _) | (_, Err(source)) => {
                return Err(DirSinkError::Io(PathError::on(
                    "chown",
                    self.root_path.join(rel),
                )(source)))
            }
        };
        rfs::chownat(
            parent,
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(self.io("chown", rel))
    }

    fn write_file(
        &self,
        parent: &OwnedFd,
        name: &std::ffi::OsStr,
        e: &Entry,
        contents: &mut dyn Read,
    ) -> Result<(), DirSinkError> {
        let rel = e.path.as_path();
        self.clear(parent, name, rel)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(parent, name, flags, Mode::from_raw_mode(0o600))
            .map_err(self.io("create", rel))?;
        let mut file = File::from(fd);
        io::copy(contents, &mut file)
            .map_err(|e| DirSinkError::Io(PathError::on("write", self.root_path.join(rel))(e)))?;
        self.chown_at(parent, name, e)?;
        rfs::fchmod(&file, Mode::from_raw_mode(e.mode)).map_err(self.io("chmod", rel))?;
        rfs::futimens(&file, &timestamps(e.mtime)).map_err(self.io("set mtime of", rel))
    }
}

impl Sink for DirSink {
    type Error = DirSinkError;

    fn entry(&mut self, e: &Entry, contents: &mut dyn Read) -> Result<(), DirSinkError> {
        if matches!(
            e.kind,
            EntryKind::Fifo | EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. }
        ) {
            return Ok(());
        }
        let rel = e.path.as_path();
        let parent = self.open_dir(e.path.parent(), true, e)?;
        let Some(name) = e.path.file_name() else {
            return Ok(());
        };
        match &e.kind {
            EntryKind::Dir => {
                match rfs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                    Ok(_) => {
                        rfs::unlinkat(&parent, name, AtFlags::empty())
                            .map_err(self.io("remove", rel))?;
                        rfs::mkdirat(&parent, name, Mode::from_raw_mode(0o700))
                            .map_err(self.io("create directory", rel))?;
                    }
                    Err(Errno::NOENT) => rfs::mkdirat(&parent, name, Mode::from_raw_mode(0o700))
                        .map_err(self.io("create directory", rel))?,
                    Err(err) => return Err(self.io("stat", rel)(err)),
                }
                self.chown_at(&parent, name, e)?;
                rfs::chmodat(&parent, name, Mode::from_raw_mode(e.mode), AtFlags::empty())
                    .map_err(self.io("chmod", rel))?;
                self.dir_times.push((e.path.clone(), e.mtime));
                Ok(())
            }
            EntryKind::File => self.write_file(&parent, name, e, contents),
            EntryKind::Symlink { target } => {
                self.clear(&parent, name, rel)?;
                rfs::symlinkat(target.as_slice(), &parent, name)
                    .map_err(self.io("create symlink", rel))?;
                self.chown_at(&parent, name, e)?;
                rfs::utimensat(
                    &parent,
                    name,
                    &timestamps(e.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(self.io("set mtime of", rel))
            }
            EntryKind::HardLink { target } => {
                let source_dir = self.open_dir(target.parent(), false, e)?;
                let Some(source) = target.file_name() else {
                    return Ok(());
                };
                self.clear(&parent, name, rel)?;
                rfs::linkat(&source_dir, source, &parent, name, AtFlags::empty())
                    .map_err(self.io("create hard link", rel))
            }
            EntryKind::Fifo | EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } => {
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<(), DirSinkError> {
        for (path, mtime) in std::mem::take(&mut self.dir_times).iter().rev() {
            let parent = match rfs::openat2(
                &self.root,
                if path.parent().as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    path.parent()
                },
                DIR_FLAGS,
                Mode::empty(),
                BENEATH,
            ) {
                Ok(fd) => fd,
                // Replaced by a later entry: its time is that entry's business.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::XDEV) => continue,
                Err(e) => return Err(self.io("open directory", path.parent())(e)),
            };
            let Some(name) = path.file_name() else {
                continue;
            };
            match rfs::utimensat(
                &parent,
                name,
                &timestamps(*mtime),
                AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(self.io("set mtime of", path.as_path())(e)),
            }
        }
        Ok(())
    }
}
