//! Small filesystem helpers shared by the store modules: unique staging names, directory
//! fsync, whole-filesystem sync, robust tree removal and tree sizes.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::NixPath;

use crate::error::{io_err, CacheError};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name that no other staging entry of this or any other live process uses:
/// `<prefix>-<pid>-<counter>-<nanos>`. Callers still create with "must not exist" semantics.
pub(crate) fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// Flushes a directory's entries (new names, renames) to disk.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), CacheError> {
    let f = File::open(dir).map_err(io_err("open directory for fsync", dir))?;
    f.sync_all().map_err(io_err("fsync directory", dir))
}

/// Flushes every dirty page of the filesystem holding `path` (one `syncfs(2)` instead of an
/// fsync per file of a whole unpacked layer).
pub(crate) fn syncfs(path: &Path) -> Result<(), CacheError> {
    use std::os::fd::AsRawFd;
    let f = File::open(path).map_err(io_err("open for syncfs", path))?;
    nix::unistd::syncfs(f.as_raw_fd()).map_err(|e| io_err("syncfs", path)(e.into()))
}

/// ext4's "top of a directory hierarchy" inode flag (`chattr +T`, `FS_TOPDIR_FL`).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Marks `dir` (best effort, ext4 and similar) as the top of directory hierarchies, so that
/// the inode allocator places each new subdirectory, and the files later created in it, in a
/// lightly used block group instead of next to `dir`.
///
/// Why: on ext4 without a journal, a newly created inode skips every inode of its group
/// deleted in the last minute (five when its inode table block is still dirty), checking each
/// one; after a prune has just deleted thousands of snapshot files near the staging directory,
/// every file a build creates paid a scan over them (half of a cold B4 build's CPU time, in
/// `recently_deleted`/`find_inode_bit`). Spreading staging directories over groups makes
/// that rare. The flag changes no semantics; filesystems without it are left alone.
pub fn spread_subdirs(dir: &Path) {
    use std::os::fd::AsRawFd;
    let Ok(f) = File::open(dir) else {
        return;
    };
    let mut flags: libc::c_int = 0;
    // libc: nix offers ioctls only as unsafe generated functions, no safe FS_IOC_*FLAGS.
    // SAFETY: FS_IOC_GETFLAGS writes one int through the pointer, valid for the call.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return;
    }
    if flags & FS_TOPDIR_FL == 0 {
        flags |= FS_TOPDIR_FL;
        // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer, valid for the call.
        let _ = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) };
    }
}

/// `renameat2(2)` of two paths (relative ones to the working directory), as its system call:
/// nix wraps it for glibc only, and the static (musl) release build needs it as well.
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> Result<(), Errno> {
    from.with_nix_path(|from| {
        to.with_nix_path(|to| {
            // SAFETY: both paths are NUL-terminated C strings that outlive the call.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_renameat2,
                    libc::AT_FDCWD,
                    from.as_ptr(),
                    libc::AT_FDCWD,
                    to.as_ptr(),
                    flags,
                )
            };
            Errno::result(rc).map(drop)
        })
    })??
}

/// Exchanges directories `a` and `b` atomically (`renameat2(RENAME_EXCHANGE)`). Where the
/// filesystem cannot, `b` is first renamed to a free name beside `a` and `a` then to `b`;
/// either way `a` ends up holding what `b` held.
pub(crate) fn exchange(a: &Path, b: &Path) -> Result<(), CacheError> {
    match renameat2(a, b, libc::RENAME_EXCHANGE) {
        Ok(()) => return Ok(()),
        Err(Errno::EINVAL | Errno::ENOSYS) => {}
        Err(e) => return Err(io_err("exchange", b)(e.into())),
    }
    let aside = a.with_extension("exchanged");
    fs::rename(b, &aside).map_err(io_err("rename", b))?;
    fs::rename(a, b).map_err(io_err("rename", a))?;
    fs::rename(&aside, a).map_err(io_err("rename", &aside))
}

/// Renames `from` to `to` unless `to` exists. Returns `Ok(false)` when `to` already exists
/// (nothing was renamed).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> Result<bool, CacheError> {
    match renameat2(from, to, libc::RENAME_NOREPLACE) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST | Errno::ENOTEMPTY) => Ok(false),
        // Filesystems without RENAME_NOREPLACE: check, then rename (a directory rename onto a
        // non-empty directory still fails, which we report as "exists").
        Err(Errno::EINVAL | Errno::ENOSYS) => {
            if fs::symlink_metadata(to).is_ok() {
                return Ok(false);
            }
            match fs::rename(from, to) {
                Ok(()) => Ok(true),
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY)) =>
                {
                    Ok(false)
                }
                Err(e) => Err(CacheError::Io {
                    action: "rename",
                    path: from.to_path_buf(),
                    source: e,
                }),
            }
        }
        Err(e) => Err(CacheError::Io {
            action: "rename",
            path: from.to_path_buf(),
            source: e.into(),
        }),
    }
}

/// Removes a file or directory tree if it exists. Directories a build left without write
/// permission are made writable first, so a failed RUN cannot leave undeletable staging.
pub(crate) fn remove_tree(path: &Path) -> Result<(), CacheError> {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("stat", path)(e)),
    };
    if !md.is_dir() {
        return fs::remove_file(path).map_err(io_err("remove file", path));
    }
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    make_dirs_writable(path);
    fs::remove_dir_all(path).map_err(io_err("remove directory tree", path))
}

fn make_dirs_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(rd) = fs::read_dir(dir) {
        for entry in rd.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                make_dirs_writable(&entry.path());
            }
        }
    }
}

/// Apparent size in bytes of every regular file and symlink under `path` (0 if missing).
pub(crate) fn tree_size(path: &Path) -> Result<u64, CacheError> {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("stat", path)(e)),
    };
    if !md.is_dir() {
        return Ok(md.len());
    }
    let mut total = 0;
    for entry in fs::read_dir(path).map_err(io_err("read directory", path))? {
        let entry = entry.map_err(io_err("read directory", path))?;
        total += tree_size(&entry.path())?;
    }
    Ok(total)
}

/// Names (file names) of the entries of `dir`; empty if `dir` does not exist.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, CacheError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        out.push(entry.map_err(io_err("read directory", dir))?.path());
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ() {
        let a = unique_name("blob");
        let b = unique_name("blob");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("blob-{}-", std::process::id())));
    }

    #[test]
    fn rename_noreplace_never_overwrites() {
        let t = tempfile::tempdir().unwrap();
        let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
        fs::create_dir(&a).unwrap();
        fs::write(a.join("f"), b"a").unwrap();
        fs::create_dir(&b).unwrap();
        assert!(rename_noreplace(&a, &c).unwrap());
        assert!(c.join("f").is_file() && !a.exists());
        // An existing destination, even an empty directory, is left alone.
        assert!(!rename_noreplace(&c, &b).unwrap());
        assert!(c.join("f").is_file());
        assert_eq!(fs::read_dir(&b).unwrap().count(), 0);
    }

    #[test]
    fn spread_subdirs_sets_the_topdir_flag_on_ext4() {
        use std::os::fd::AsRawFd;
        let t = tempfile::tempdir_in("/var/tmp").unwrap();
        spread_subdirs(t.path());
        spread_subdirs(&t.path().join("missing")); // best effort: no error, no panic
        let ext4 = nix::sys::statfs::statfs(t.path())
            .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::EXT4_SUPER_MAGIC);
        if !rbuild_test_support::require("/var/tmp on ext4", ext4) {
            return;
        }
        let f = File::open(t.path()).unwrap();
        let mut flags: libc::c_int = 0;
        // SAFETY: FS_IOC_GETFLAGS writes one int through the pointer.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
        assert_eq!(rc, 0);
        assert_ne!(flags & FS_TOPDIR_FL, 0);
    }

    #[test]
    fn tree_helpers() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        fs::create_dir_all(d.join("x/y")).unwrap();
        fs::write(d.join("x/y/f"), [0u8; 10]).unwrap();
        fs::write(d.join("g"), [0u8; 5]).unwrap();
        assert_eq!(tree_size(&d).unwrap(), 15);
        assert_eq!(tree_size(&t.path().join("missing")).unwrap(), 0);
        assert_eq!(list_dir(&d).unwrap(), vec![d.join("g"), d.join("x")]);
        fs::set_permissions(d.join("x"), fs::Permissions::from_mode(0o500)).unwrap();
        remove_tree(&d).unwrap();
        assert!(!d.exists());
        remove_tree(&d).unwrap();
    }
}
