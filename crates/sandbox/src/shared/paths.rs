//! Joining a container path onto the rootfs without ever leaving it: symlinks inside the rootfs
//! are resolved as if the rootfs were `/` (absolute targets and `..` stay inside), by the one
//! resolver of image paths ([`rbuild_types::root_path`]) over the rootfs directory. Used for
//! every mount point, so an image whose `/etc/hosts` is a symlink to a host path cannot make
//! the setup mount over a host file.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fstatat, SFlag};
use rbuild_types::root_path::{self, Follow, Node, ResolveError, Tree};

use crate::shared::error::{Result, SetupError};

/// `root` joined with `path` (absolute or relative, taken inside `root`), with every symlink
/// met on the way resolved inside `root`, the last one too. Components that do not exist are
/// appended as they are.
pub fn secure_join(root: &Path, path: &Path) -> Result<PathBuf> {
    let tree = HostRoot {
        root,
        // Components are looked up relative to a descriptor of `root`, so that each lookup
        // walks only the path inside the root, not the root's own (long) path again. Without
        // one (a missing root) every name is missing: the result is `root` joined with the path.
        dir: File::open(root).ok(),
    };
    match root_path::resolve(&tree, path, Follow::Last) {
        Ok(r) => Ok(root.join(r.path.strip_prefix("/").unwrap_or(&r.path))),
        Err(ResolveError::TooManyLinks { .. }) => Err(SetupError::io(
            "resolve",
            root.join(path.strip_prefix("/").unwrap_or(path)),
            io::Error::from_raw_os_error(libc::ELOOP),
        )),
        Err(ResolveError::NotADirectory { at, .. }) => Err(SetupError::io(
            "resolve",
            root.join(at.strip_prefix("/").unwrap_or(&at)),
            io::Error::from_raw_os_error(libc::ENOTDIR),
        )),
        Err(ResolveError::Io { source, .. }) => Err(SetupError::io(
            "resolve",
            root.join(path.strip_prefix("/").unwrap_or(path)),
            source,
        )),
    }
}

/// A directory of the host taken as a root; entries are paths relative to it.
struct HostRoot<'a> {
    root: &'a Path,
    dir: Option<File>,
}

impl Tree for HostRoot<'_> {
    type Entry = PathBuf;

    fn root(&self) -> io::Result<PathBuf> {
        Ok(PathBuf::new())
    }

    fn child(&self, dir: &PathBuf, name: &OsStr) -> io::Result<Node<PathBuf>> {
        let rel = dir.join(name);
        let Some(fd) = &self.dir else {
            return Ok(Node::Missing);
        };
        let st = match fstatat(Some(fd.as_raw_fd()), &rel, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(Node::Missing),
            Err(e) => return Err(e.into()),
        };
        Ok(
            match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
                SFlag::S_IFDIR => Node::Dir(rel),
                SFlag::S_IFLNK => Node::Symlink(std::fs::read_link(self.root.join(&rel))?, rel),
                _ => Node::Other(rel),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/etc")).expect("mkdir");
        symlink("/real/etc", root.join("etc")).expect("symlink");
        symlink("../../../../outside", root.join("real/etc/hosts")).expect("symlink");
        assert_eq!(
            secure_join(root, Path::new("/etc/resolv.conf")).expect("join"),
            root.join("real/etc/resolv.conf")
        );
        assert_eq!(
            secure_join(root, Path::new("/etc/hosts")).expect("join"),
            root.join("outside")
        );
        assert_eq!(
            secure_join(root, Path::new("/../../proc")).expect("join"),
            root.join("proc")
        );
    }

    #[test]
    fn symlink_loops_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        symlink("b", dir.path().join("a")).expect("symlink");
        symlink("a", dir.path().join("b")).expect("symlink");
        assert!(secure_join(dir.path(), Path::new("/a/x")).is_err());
    }
}
