//! Low-level writers of a file op's layer: one regular file or one directory into the upper
//! dir with as few syscalls as the result allows, and placement of a fresh layer on disk.
//!
//! A copied file is written through its descriptors only: open the source, `fstat` it, create
//! the target with `O_EXCL`, copy (`copy_file_range` through `std::io::copy`), `fchown`,
//! `fchmod`, `futimens`. The owner is set before the mode because changing the owner clears
//! set-user-id and set-group-id bits. When the target already exists (an earlier action of the
//! same op wrote there) it is removed and the create retried, so the common case never stats.
//!
//! Placement (where inode reuse is slow, see `rbuild_cache::placement`): a fresh layer's
//! top-level directories are created the way the kernel spreads top-level directories
//! (Orlov): the layer root gets the `TOPDIR` attribute and each top-level directory is created
//! under a random temporary name (the allocator's starting group is a hash of the name) and
//! renamed into place; every directory the layer creates is marked `TOPDIR` too, so the tree
//! spreads over the emptiest flex groups rather than filling the one the last deleted tree
//! occupied. A copy whose files are hard links from a donor snapshot, which allocate no
//! inodes, does not spread.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::copy_file_range;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fchmod, futimens, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, linkat, Gid, Uid};
use rbuild_cache::placement::spread_subdirs;

/// What a copied regular file ends with in the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileAttrs {
    /// Permission bits, set-id and sticky bits included (`0o7777`).
    pub mode: u32,
    /// Owner; `None` keeps the owner the creating process gives (one that cannot give files
    /// away: `FileOpRunner::file_owner`).
    pub owner: Option<(u32, u32)>,
}

/// What [`copy_file`] found its source to be when it opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CopiedFrom {
    /// The mtime (ns since the epoch) the copy kept.
    pub mtime_ns: i64,
    pub size: u64,
}

/// Copies regular file `src` to the new file `dst` with `attrs` and `src`'s mtime (atime set
/// to the same). A non-directory at `dst` is replaced; a directory there is an error
/// (`EISDIR`).
pub(crate) fn copy_file(src: &Path, dst: &Path, attrs: FileAttrs) -> io::Result<CopiedFrom> {
    let mut from = File::open(src)?;
    let meta = from.metadata()?;
    let mut to = create_replacing(dst, InTheWay::KeepDirectory)?;
    let done = copy_range(&from, &to, meta.len())?;
    if done < meta.len() {
        // Fallback (copy_file_range refused, or the file changed size): plain copy of the rest.
        io::copy(&mut from, &mut to)?;
    }
    finish_fd(&to, attrs, meta.mtime(), meta.mtime_nsec())?;
    Ok(CopiedFrom {
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        size: meta.len(),
    })
}

/// Hard-links file `name` of directory `from_dir` as `name` in `to_dir` (both open). Returns
/// false, with nothing done, when the source is gone or something is already at the target.
pub(crate) fn link_at(from_dir: RawFd, to_dir: RawFd, name: &OsStr) -> io::Result<bool> {
    match linkat(Some(from_dir), name, Some(to_dir), name, AtFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST | Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Copies up to `len` bytes from the current offsets with `copy_file_range` (no stat, no
/// end-of-file probe: the length is known). Returns the bytes copied; fewer than `len` when
/// the kernel refuses (other filesystem, special file) or the source is shorter.
fn copy_range(from: &File, to: &File, len: u64) -> io::Result<u64> {
    let mut done = 0u64;
    while done < len {
        let chunk = usize::try_from(len - done)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        // No offsets: the files' own offsets are used and advanced.
        match copy_file_range(from, None, to, None, chunk) {
            Ok(0) => break,
            Ok(n) => done += n as u64,
            Err(Errno::EINTR) => continue,
            Err(
                Errno::EXDEV | Errno::ENOSYS | Errno::EINVAL | Errno::EOPNOTSUPP | Errno::EPERM,
            ) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

/// What [`create_replacing`] does with a directory where the file goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InTheWay {
    /// Remove it with its contents (an archive entry replaces what is there, as in Docker).
    RemoveDirectory,
    /// Fail with `EISDIR` (a copy never replaces a directory with a file, as in BuildKit).
    KeepDirectory,
}

/// Creates the new, empty file `dst` (mode 0600 until [`finish_fd`]), replacing a
/// non-directory there, and a directory as `dirs` says; the common case (nothing there) costs
/// one `open`.
pub(crate) fn create_replacing(dst: &Path, dirs: InTheWay) -> io::Result<File> {
    match create_excl(dst) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if dirs == InTheWay::KeepDirectory && fs::symlink_metadata(dst)?.is_dir() {
                return Err(io::Error::from_raw_os_error(libc::EISDIR));
            }
            remove_any(dst)?;
            create_excl(dst)
        }
        Err(e) => Err(e),
    }
}

fn create_excl(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Removes whatever is at `path` (a directory with its contents).
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Owner, then mode (a chown clears set-id bits), then atime and mtime `(secs, nsecs)`, all
/// on the open descriptor.
pub(crate) fn finish_fd(file: &File, attrs: FileAttrs, secs: i64, nsecs: i64) -> io::Result<()> {
    let fd = file.as_raw_fd();
    if let Some((uid, gid)) = attrs.owner {
        fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    }
    fchmod(fd, Mode::from_bits_truncate(attrs.mode & 0o7777))?;
    let time = TimeSpec::new(secs, nsecs);
    futimens(fd, &time, &time)?;
    Ok(())
}

/// Creates directory `path`, a direct child of the layer root `upper`, placed away from
/// recently freed inodes (see the module docs). Fails with `AlreadyExists` like
/// [`fs::create_dir`] when something is at `path`.
pub(crate) fn create_top_dir(upper: &Path, path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(io::Error::from(io::ErrorKind::AlreadyExists));
    }
    spread_subdirs(upper);
    let tmp = temp_name(upper);
    fs::create_dir(&tmp)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_dir(&tmp);
        return Err(e);
    }
    Ok(())
}

/// A name under `dir` that nothing else uses: random, so the allocator's start group is too.
fn temp_name(dir: &Path) -> PathBuf {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    dir.join(format!(".rbuild-place-{:016x}", h.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copy_keeps_mode_mtime_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::write(&src, b"hello").unwrap();
        let t = TimeSpec::new(1_000_000, 5);
        let f = File::open(&src).unwrap();
        futimens(f.as_raw_fd(), &t, &t).unwrap();
        let dst = dir.path().join("dst");
        fs::create_dir(&dst).unwrap();
        fs::write(dst.join("inner"), b"x").unwrap();
        let can_chown = rbuild_test_support::privileges().can_chown();
        let attrs = FileAttrs {
            mode: 0o4751,
            owner: Some((0, 0)).filter(|_| can_chown),
        };
        // A directory in the way is kept (BuildKit: "cannot replace to directory").
        let e = copy_file(&src, &dst, attrs).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
        assert_eq!(fs::read(dst.join("inner")).unwrap(), b"x");
        fs::remove_dir_all(&dst).unwrap();
        // A file or a symlink in the way is replaced, never written through.
        std::os::unix::fs::symlink(&src, &dst).unwrap();
        copy_file(&src, &dst, attrs).unwrap();
        assert_eq!(fs::read(&src).unwrap(), b"hello");
        fs::remove_file(&dst).unwrap();
        fs::write(&dst, b"old").unwrap();
        copy_file(&src, &dst, attrs).unwrap();
        let m = fs::symlink_metadata(&dst).unwrap();
        assert!(m.is_file());
        assert_eq!(fs::read(&dst).unwrap(), b"hello");
        let want = if can_chown { 0o4751 } else { 0o4751 & m.mode() };
        assert_eq!(m.permissions().mode() & 0o7777, want);
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_000_000, 5));
        copy_file(&src, &dst, attrs).unwrap();
        assert_eq!(fs::read(&dst).unwrap(), b"hello");
    }

    #[test]
    fn copy_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let attrs = FileAttrs {
            mode: 0o644,
            owner: None,
        };
        for (i, len) in [0usize, 1, 4096, 300_000].into_iter().enumerate() {
            let src = dir.path().join(format!("s{i}"));
            let data: Vec<u8> = (0..len).map(|n| (n % 251) as u8).collect();
            fs::write(&src, &data).unwrap();
            let dst = dir.path().join(format!("d{i}"));
            copy_file(&src, &dst, attrs).unwrap();
            assert_eq!(fs::read(&dst).unwrap(), data, "{len} bytes");
        }
    }

    #[test]
    fn top_dir_lands_at_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        create_top_dir(dir.path(), &app).unwrap();
        assert!(app.is_dir());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let again = create_top_dir(dir.path(), &app).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
    }
}
