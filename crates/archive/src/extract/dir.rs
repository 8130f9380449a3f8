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

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};
use rbuild_types::ByteString;

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

const DIR_FLAGS: OFlag = OFlag::O_PATH
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);
const BENEATH: ResolveFlag = ResolveFlag::RESOLVE_BENEATH.union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

/// An mtime (and atime) of `mtime` seconds.
fn timestamp(mtime: u64) -> TimeSpec {
    TimeSpec::new(i64::try_from(mtime).unwrap_or(i64::MAX), 0)
}

/// Takes ownership of a descriptor that an open just returned (nix 0.29's `*at` calls hand
/// out raw descriptors).
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open; nothing else owns or closes it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Opens `path` beneath directory `dir` as a directory (`O_PATH`), by `openat2` with
/// `RESOLVE_BENEATH`: `EXDEV` when the path leads out of `dir`.
fn open_beneath(dir: &OwnedFd, path: &Path) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new().flags(DIR_FLAGS).resolve(BENEATH);
    fcntl::openat2(dir.as_raw_fd(), path, how).map(owned)
}

/// `fstatat` of `name` in `dir`, not following a symlink.
fn stat_at(dir: &OwnedFd, name: &OsStr) -> Result<FileStat, Errno> {
    stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Whether `st` describes a directory.
fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// A mode as `chmod` takes it: permission, set-id and sticky bits.
fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits)
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
        let fd = fcntl::open(root, DIR_FLAGS, Mode::empty())
            .map_err(|e| DirSinkError::Io(PathError::on("open directory", root)(e.into())))?;
        Ok(DirSink {
            root: owned(fd),
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
        match open_beneath(&self.root, target) {
            Ok(fd) => return Ok(fd),
            Err(Errno::EXDEV) => return Err(escapes()),
            Err(Errno::ENOENT) if create => {}
            Err(e) => return Err(self.io("open directory", rel)(e)),
        }
        let mut dir = open_beneath(&self.root, Path::new("."))
            .map_err(self.io("open directory", Path::new("")))?;
        let mut prefix = PathBuf::new();
        for part in rel.components() {
            let Component::Normal(name) = part else {
                continue;
            };
            prefix.push(name);
            dir = match open_beneath(&self.root, &prefix) {
                Ok(fd) => fd,
                Err(Errno::EXDEV) => return Err(escapes()),
                Err(Errno::ENOENT) => {
                    stat::mkdirat(Some(dir.as_raw_fd()), name, mode(0o755))
                        .map_err(self.io("create directory", &prefix))?;
                    let flags = DIR_FLAGS | OFlag::O_NOFOLLOW;
                    fcntl::openat(Some(dir.as_raw_fd()), name, flags, Mode::empty())
                        .map(owned)
                        .map_err(self.io("open directory", &prefix))?
                }
                Err(e) => return Err(self.io("open directory", &prefix)(e)),
            };
        }
        Ok(dir)
    }

    /// Removes a non-directory at `name` in `parent`; a directory there is an error.
    fn clear(&self, parent: &OwnedFd, name: &OsStr, rel: &Path) -> Result<(), DirSinkError> {
        match stat_at(parent, name) {
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(self.io("stat", rel)(e)),
            Ok(st) if is_dir(&st) => Err(self.io("replace", rel)(Errno::EISDIR)),
            Ok(_) => unistd::unlinkat(Some(parent.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
                .map_err(self.io("remove", rel)),
        }
    }

    fn chown_at(&self, parent: &OwnedFd, name: &OsStr, e: &Entry) -> Result<(), DirSinkError> {
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
        unistd::fchownat(
            Some(parent.as_raw_fd()),
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(self.io("chown", rel))
    }

    fn write_file(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        e: &Entry,
        contents: &mut dyn Read,
    ) -> Result<(), DirSinkError> {
        let rel = e.path.as_path();
        self.clear(parent, name, rel)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(Some(parent.as_raw_fd()), name, flags, mode(0o600))
            .map_err(self.io("create", rel))?;
        let mut file = File::from(owned(fd));
        io::copy(contents, &mut file)
            .map_err(|e| DirSinkError::Io(PathError::on("write", self.root_path.join(rel))(e)))?;
        self.chown_at(parent, name, e)?;
        stat::fchmod(file.as_raw_fd(), mode(e.mode)).map_err(self.io("chmod", rel))?;
        let t = timestamp(e.mtime);
        stat::futimens(file.as_raw_fd(), &t, &t).map_err(self.io("set mtime of", rel))
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
                let at = Some(parent.as_raw_fd());
                let mkdir = || stat::mkdirat(at, name, mode(0o700));
                match stat_at(&parent, name) {
                    Ok(st) if is_dir(&st) => {}
                    Ok(_) => {
                        unistd::unlinkat(at, name, UnlinkatFlags::NoRemoveDir)
                            .map_err(self.io("remove", rel))?;
                        mkdir().map_err(self.io("create directory", rel))?;
                    }
                    Err(Errno::ENOENT) => mkdir().map_err(self.io("create directory", rel))?,
                    Err(err) => return Err(self.io("stat", rel)(err)),
                }
                self.chown_at(&parent, name, e)?;
                stat::fchmodat(at, name, mode(e.mode), FchmodatFlags::FollowSymlink)
                    .map_err(self.io("chmod", rel))?;
                self.dir_times.push((e.path.clone(), e.mtime));
                Ok(())
            }
            EntryKind::File => self.write_file(&parent, name, e, contents),
            EntryKind::Symlink { target } => {
                self.clear(&parent, name, rel)?;
                let at = Some(parent.as_raw_fd());
                unistd::symlinkat(OsStr::from_bytes(target.as_slice()), at, name)
                    .map_err(self.io("create symlink", rel))?;
                self.chown_at(&parent, name, e)?;
                let t = timestamp(e.mtime);
                stat::utimensat(at, name, &t, &t, UtimensatFlags::NoFollowSymlink)
                    .map_err(self.io("set mtime of", rel))
            }
            EntryKind::HardLink { target } => {
                let source_dir = self.open_dir(target.parent(), false, e)?;
                let Some(source) = target.file_name() else {
                    return Ok(());
                };
                self.clear(&parent, name, rel)?;
                unistd::linkat(
                    Some(source_dir.as_raw_fd()),
                    source,
                    Some(parent.as_raw_fd()),
                    name,
                    AtFlags::empty(),
                )
                .map_err(self.io("create hard link", rel))
            }
            EntryKind::Fifo | EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } => {
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<(), DirSinkError> {
        for (path, mtime) in std::mem::take(&mut self.dir_times).iter().rev() {
            let dir = if path.parent().as_os_str().is_empty() {
                Path::new(".")
            } else {
                path.parent()
            };
            let parent = match open_beneath(&self.root, dir) {
                Ok(fd) => fd,
                // Replaced by a later entry: its time is that entry's business.
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::EXDEV) => continue,
                Err(e) => return Err(self.io("open directory", path.parent())(e)),
            };
            let Some(name) = path.file_name() else {
                continue;
            };
            let t = timestamp(*mtime);
            let at = Some(parent.as_raw_fd());
            match stat::utimensat(at, name, &t, &t, UtimensatFlags::NoFollowSymlink) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(self.io("set mtime of", path.as_path())(e)),
            }
        }
        Ok(())
    }
}
