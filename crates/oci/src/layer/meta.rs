//! Filesystem metadata helpers: xattrs, ownership, times and device nodes, never following
//! symlinks.
//!
//! Only the host's root ([`Privileges::is_host_root`]) can write any ownership, device and
//! `trusted.*` xattr. Root in another user namespace (rootless rbuild) can give files only to
//! the ids mapped there and cannot write `trusted.*`: it is treated like an unprivileged user,
//! whose failed chowns and xattrs are skipped.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use rbuild_types::Privileges;

/// The xattrs of `path` (not following symlinks) that belong in a layer, sorted by name:
/// the snapshot format's content xattrs (`rbuild_cache::overlay::content_xattrs`).
pub fn layer_xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    rbuild_cache::overlay::content_xattrs(path)
}

/// Whether `path` is an overlayfs opaque directory.
pub fn is_opaque_dir(path: &Path) -> io::Result<bool> {
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        match xattr::get(path, name) {
            Ok(Some(v)) if v == b"y" => return Ok(true),
            Ok(_) => {}
            Err(e) if unsupported(&e) || e.raw_os_error() == Some(libc::EPERM) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENODATA))
}

/// Sets one xattr (not following symlinks). Unless `privileges` are the host's root,
/// permission errors are ignored (a rootless unpack cannot set `trusted.*` or `security.*`).
pub fn set_xattr(path: &Path, name: &str, value: &[u8], privileges: &Privileges) -> io::Result<()> {
    match xattr::set(path, OsStr::from_bytes(name.as_bytes()), value) {
        Err(e)
            if !privileges.is_host_root()
                && matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOTSUP)) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// lchown; unless `privileges` are the host's root a failure is ignored (the files stay
/// owned by the caller).
pub fn lchown(path: &Path, uid: u64, gid: u64, privileges: &Privileges) -> io::Result<()> {
    let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("uid/gid {uid}:{gid} out of range"),
        ));
    };
    let res = nix::unistd::fchownat(
        None,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    match res {
        Ok(()) => Ok(()),
        Err(_) if !privileges.is_host_root() => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Sets atime and mtime of `path` (not following symlinks) to `mtime` seconds.
pub fn set_mtime(path: &Path, mtime: u64) -> io::Result<()> {
    let secs = i64::try_from(mtime).unwrap_or(i64::MAX);
    let ts = TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(
        None,
        path,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// Creates a device node or fifo.
pub fn make_node(path: &Path, kind: SFlag, mode: u32, major: u64, minor: u64) -> io::Result<()> {
    let dev = nix::sys::stat::makedev(major, minor);
    mknod(path, kind, Mode::from_bits_truncate(mode & 0o7777), dev).map_err(io::Error::from)
}
