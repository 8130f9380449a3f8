//! [`ConfinedDir`]: writing into a directory tree that may already hold things (an OCI
//! layout written with `tar=false` over an earlier one), confined to that tree.
//!
//! Invariants: every step goes through the descriptor of its parent directory and never
//! follows a symlink found inside the tree; whatever is in the way of a directory or file
//! being written (a symlink, a file where a directory goes) is replaced — removed or renamed
//! over — never written through. So nothing outside the tree is ever written, whatever links
//! the tree holds or gains meanwhile. Only the root itself, which the user named, is
//! followed if it is a symlink.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{linkat, unlinkat, UnlinkatFlags};

use crate::OciError;

/// An open directory of the tree.
#[derive(Debug)]
pub struct ConfinedDir {
    fd: OwnedFd,
    /// Where it is, for messages.
    path: PathBuf,
}

fn io_err(op: &'static str, path: PathBuf) -> impl FnOnce(Errno) -> OciError {
    move |e| OciError::Io {
        op,
        path,
        source: io::Error::from(e),
    }
}

/// A name for a temp entry, unique within this process (with `O_EXCL` for the rest).
fn temp_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        ".rbuild-tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens directory `name` in `dir` without following a symlink.
fn open_dir_nofollow(dir: Option<i32>, name: &Path) -> nix::Result<OwnedFd> {
    let fd = openat(
        dir,
        name,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl ConfinedDir {
    /// The root of the tree: `path`, created (with its parents) if missing.
    pub fn open_root(path: &Path) -> Result<ConfinedDir, OciError> {
        std::fs::create_dir_all(path).map_err(OciError::io("create directory", path))?;
        let fd = openat(
            None,
            path,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err("open directory", path.to_path_buf()))?;
        Ok(ConfinedDir {
            // SAFETY: openat just returned this descriptor, and nothing else owns it.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    fn raw(&self) -> Option<i32> {
        Some(self.fd.as_raw_fd())
    }

    /// Directory `name` (one component) inside, created (mode 0755) if missing. Anything
    /// else of that name — a symlink, a file — is removed first.
    pub fn subdir(&self, name: &str) -> Result<ConfinedDir, OciError> {
        let path = self.path.join(name);
        let name = Path::new(name);
        for _ in 0..2 {
            match mkdirat(self.raw(), name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(io_err("create directory", path)(e)),
            }
            match open_dir_nofollow(self.raw(), name) {
                Ok(fd) => return Ok(ConfinedDir { fd, path }),
                // A symlink (ELOOP) or a non-directory (ENOTDIR) is in the way: replace it.
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    unlinkat(self.raw(), name, UnlinkatFlags::NoRemoveDir)
                        .map_err(io_err("remove", path.clone()))?;
                }
                Err(e) => return Err(io_err("open directory", path)(e)),
            }
        }
        Err(io_err("create directory", path)(Errno::EEXIST))
    }

    /// Creates a new temp file inside; returns its name and the open file.
    fn temp_file(&self) -> Result<(String, File), OciError> {
        loop {
            let name = temp_name();
            match openat(
                self.raw(),
                Path::new(&name),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            ) {
                // SAFETY: openat just returned this descriptor, and nothing else owns it.
                Ok(fd) => return Ok((name, File::from(unsafe { OwnedFd::from_raw_fd(fd) }))),
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(io_err("create temp file in", self.path.clone())(e)),
            }
        }
    }

    /// Renames temp entry `tmp` over `name` (replacing a file or symlink there, not what a
    /// symlink points to); the temp entry is removed if that fails.
    fn publish(&self, tmp: &str, name: &str) -> Result<(), OciError> {
        renameat(self.raw(), Path::new(tmp), self.raw(), Path::new(name)).map_err(|e| {
            let _ = unlinkat(self.raw(), Path::new(tmp), UnlinkatFlags::NoRemoveDir);
            io_err("write", self.path.join(name))(e)
        })
    }

    /// Writes `bytes` as file `name` (mode 0644 less the umask): a temp file renamed over
    /// whatever has that name.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), OciError> {
        let (tmp, mut file) = self.temp_file()?;
        if let Err(e) = file.write_all(bytes) {
            let _ = unlinkat(self.raw(), Path::new(&tmp), UnlinkatFlags::NoRemoveDir);
            return Err(OciError::io("write", self.path.join(name))(e));
        }
        drop(file);
        self.publish(&tmp, name)
    }

    /// Writes `bytes` as file `name` with permissions `mode` (exactly, umask aside) and
    /// modification time `mtime`: a temp file renamed over whatever has that name.
    pub fn write_file_with(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
        mtime: std::time::SystemTime,
    ) -> Result<(), OciError> {
        use std::os::unix::fs::PermissionsExt;
        let (tmp, mut file) = self.temp_file()?;
        let written = file
            .write_all(bytes)
            .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(mode)))
            .and_then(|()| file.set_modified(mtime));
        if let Err(e) = written {
            let _ = unlinkat(self.raw(), Path::new(&tmp), UnlinkatFlags::NoRemoveDir);
            return Err(OciError::io("write", self.path.join(name))(e));
        }
        drop(file);
        self.publish(&tmp, name)
    }

    /// Makes file `name` a copy of host file `src` (a hard link when both are on one
    /// filesystem), unless a regular file of that name and size is already there (names are
    /// digests: same name, same content).
    pub fn link_or_copy(&self, name: &str, src: &Path) -> Result<(), OciError> {
        let size = std::fs::metadata(src)
            .map_err(OciError::io("stat", src))?
            .size();
        match fstatat(self.raw(), Path::new(name), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st)
                if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
                    && st.st_size as u64 == size =>
            {
                return Ok(())
            }
            _ => {}
        }
        let tmp = temp_name();
        let linked = linkat(None, src, self.raw(), Path::new(&tmp), AtFlags::empty());
        if linked.is_ok() {
            return self.publish(&tmp, name);
        }
        let (tmp, mut file) = self.temp_file()?;
        let copied = File::open(src)
            .and_then(|mut from| io::copy(&mut from, &mut file))
            .map_err(OciError::io("copy to", self.path.join(name)));
        if let Err(e) = copied {
            let _ = unlinkat(self.raw(), Path::new(&tmp), UnlinkatFlags::NoRemoveDir);
            return Err(e);
        }
        drop(file);
        self.publish(&tmp, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_inside_are_replaced_never_followed() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path().join("layout");
        std::fs::create_dir(&root).unwrap();
        // A link where a directory goes, a link where a file goes, a file where a directory
        // goes, a dangling link where a blob goes.
        symlink(outside.path(), root.join("blobs")).unwrap();
        symlink(&victim, root.join("index.json")).unwrap();
        std::fs::write(root.join("oci-layout"), b"old").unwrap();

        let dir = ConfinedDir::open_root(&root).unwrap();
        dir.write_file("index.json", b"{}").unwrap();
        dir.write_file("oci-layout", b"new").unwrap();
        let blobs = dir.subdir("blobs").unwrap().subdir("sha256").unwrap();
        let src = tree.path().join("src");
        std::fs::write(&src, b"blob").unwrap();
        symlink(
            outside.path().join("created"),
            root.join("blobs/sha256/abc"),
        )
        .unwrap();
        blobs.link_or_copy("abc", &src).unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert!(!outside.path().join("created").exists());
        assert!(!outside.path().join("sha256").exists());
        assert_eq!(std::fs::read(root.join("index.json")).unwrap(), b"{}");
        assert_eq!(std::fs::read(root.join("oci-layout")).unwrap(), b"new");
        assert!(std::fs::symlink_metadata(root.join("blobs"))
            .unwrap()
            .is_dir());
        assert_eq!(
            std::fs::read(root.join("blobs/sha256/abc")).unwrap(),
            b"blob"
        );
        // A second run keeps what is there, and leaves no temp entries.
        blobs.link_or_copy("abc", &src).unwrap();
        let names: Vec<_> = std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["abc"]);
    }

    #[test]
    fn a_file_where_a_directory_goes_is_replaced() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("blobs"), b"x").unwrap();
        let dir = ConfinedDir::open_root(tree.path()).unwrap();
        dir.subdir("blobs").unwrap().write_file("f", b"y").unwrap();
        assert_eq!(std::fs::read(tree.path().join("blobs/f")).unwrap(), b"y");
    }

    #[test]
    fn a_missing_root_is_created() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path().join("a/b");
        ConfinedDir::open_root(&root)
            .unwrap()
            .write_file("f", b"z")
            .unwrap();
        assert_eq!(std::fs::read(root.join("f")).unwrap(), b"z");
    }
}
