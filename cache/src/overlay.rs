//! The overlayfs upper-dir format that snapshots are stored in, read and written here so that
//! every crate agrees on it:
//! - a **whiteout** (the path is deleted in this layer) is a character device with device
//!   number 0:0;
//! - an **opaque directory** (lower layers' contents of it are hidden) carries the xattr
//!   `trusted.overlay.opaque=y` (or `user.overlay.opaque=y`, as written by rootless
//!   overlayfs mounted with `userxattr`).
//!
//! Creating whiteouts (`mknod`) and `trusted.*` xattrs needs root (CAP_MKNOD, CAP_SYS_ADMIN).

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rbuild_types::Privileges;

use nix::sys::stat::{Mode, SFlag};

use crate::error::CacheError;

/// The xattr that marks an opaque directory (root overlayfs).
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The xattr that marks an opaque directory (overlayfs mounted with `userxattr`).
pub const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// Whether `md` (from `symlink_metadata`) describes a whiteout.
pub fn is_whiteout(md: &Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Whether the directory at `path` is marked opaque. Unreadable xattrs count as "not opaque".
pub fn is_opaque(path: &Path) -> bool {
    [OPAQUE_XATTR, USER_OPAQUE_XATTR]
        .iter()
        .any(|name| xattr_is_y(path, name))
}

/// Whether `path`'s xattr `name` (not following a symlink) is `y`.
fn xattr_is_y(path: &Path, name: &str) -> bool {
    xattr::get(path, name).is_ok_and(|value| value.as_deref() == Some(b"y".as_slice()))
}

/// Creates a whiteout at `path` (which must not exist).
pub fn create_whiteout(path: &Path) -> Result<(), CacheError> {
    let dev = nix::sys::stat::makedev(0, 0);
    nix::sys::stat::mknod(path, SFlag::S_IFCHR, Mode::empty(), dev).map_err(|e| CacheError::Io {
        action: "create whiteout (mknod 0:0)",
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// Marks the directory at `path` opaque with `xattr` ([`OPAQUE_XATTR`] or
/// [`USER_OPAQUE_XATTR`]), not following a symlink.
pub fn set_opaque(path: &Path, xattr: &str) -> Result<(), CacheError> {
    xattr::set(path, xattr, b"y").map_err(|source| CacheError::Io {
        action: "set opaque xattr",
        path: path.to_path_buf(),
        source,
    })
}

/// The opaque-directory xattr a process with `privileges` writes: [`OPAQUE_XATTR`] in the
/// initial user namespace, [`USER_OPAQUE_XATTR`] in any other (where `trusted.*` cannot be
/// written and overlayfs is mounted with `userxattr`). Readers accept both ([`is_opaque`]).
pub fn opaque_xattr(privileges: &Privileges) -> &'static str {
    if privileges.in_user_namespace() {
        USER_OPAQUE_XATTR
    } else {
        OPAQUE_XATTR
    }
}

/// Whether an xattr name is overlayfs's own (opaque markers, redirects, origins): never part
/// of a snapshot's content.
pub fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

/// The xattrs of snapshot file `path` (not following symlinks) that are content, such as
/// `security.capability`, sorted by name: overlayfs's own are left out. A filesystem without
/// xattr support yields none.
pub fn content_xattrs(path: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    content_xattrs_by(|| xattr::list(path), |name| xattr::get(path, name))
}

/// [`content_xattrs`] of an open file (no path lookup).
pub fn content_xattrs_of(file: &std::fs::File) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    use xattr::FileExt;
    content_xattrs_by(|| file.list_xattr(), |name| file.get_xattr(name))
}

fn content_xattrs_by<L: Iterator<Item = std::ffi::OsString>>(
    list: impl FnOnce() -> std::io::Result<L>,
    get: impl Fn(&std::ffi::OsStr) -> std::io::Result<Option<Vec<u8>>>,
) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let unsupported =
        |e: &std::io::Error| matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENODATA));
    let names = match list() {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        let Some(text) = name.to_str() else { continue };
        if is_overlay_xattr(text) {
            continue;
        }
        match get(&name) {
            Ok(Some(value)) => out.push((text.to_string(), value)),
            Ok(None) => {}
            Err(e) if unsupported(&e) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort();
    Ok(out)
}

/// Copies the content xattrs of `from` onto `to` (neither followed), as BuildKit's copy does
/// (fsutil `copyXAttrs`), best effort like it: an xattr the filesystem or the process's
/// privileges refuse (`security.*` without `CAP_SETFCAP`, `trusted.*` rootless) is left out.
pub fn copy_content_xattrs(from: &Path, to: &Path) {
    for (name, value) in content_xattrs(from).unwrap_or_default() {
        let _ = xattr::set(to, &name, &value);
    }
}

/// Sets `xattrs` (name, value) on `path` (not followed), best effort as BuildKit's untar
/// (`BestEffortXattrs`): refused ones are left out, and overlayfs's own names are never
/// written, so that content cannot forge an opaque directory or a redirect in a snapshot.
pub fn set_content_xattrs(path: &Path, xattrs: &[(String, Vec<u8>)]) {
    for (name, value) in xattrs {
        if !is_overlay_xattr(name) {
            let _ = xattr::set(path, name, value);
        }
    }
}
