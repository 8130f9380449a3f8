//! Unpacking a layer tar (plain or compressed) into a directory in overlayfs upper-dir format:
//! the layer's sink for `rbuild_archive::extract`, which reads, sanitizes (strictly: absolute
//! names and `..` are refused) and classifies the entries.
//!
//! Invariants: nothing is ever written outside `dest` (paths through symlinks are rejected);
//! `.wh.x` becomes a 0:0 character device `x`, `.wh..wh..opq` becomes
//! `trusted.overlay.opaque=y` on its directory; the returned diff_id is the SHA-256 of the whole
//! uncompressed stream, trailing padding included.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::SFlag;
use rbuild_archive::digest_io::HashingReader;
use rbuild_archive::{
    decompress, extract, ArchiveError, Entry, EntryKind, ExtractError, NamePolicy, Sink,
};
use rbuild_cache::placement::{slow_inode_reuse, spread_subdirs};

use rbuild_types::Privileges;

use super::meta::{lchown, make_node, set_mtime, set_xattr};
use super::paths::prepare_parents;
use super::{LayerDigest, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::OciError;

/// Unpacks the layer tar read from `reader` (compression detected by magic bytes) into `dest`
/// (which must exist) and returns the digest and size of the uncompressed tar. `privileges`
/// (rbuild's, detected at startup) decide which owners, devices and xattrs can be written
/// and which opaque-directory xattr marks a directory (see `meta`).
pub fn unpack(
    reader: impl Read,
    dest: &Path,
    privileges: &Privileges,
) -> Result<LayerDigest, OciError> {
    let stream = |source| OciError::Stream {
        what: "layer",
        source,
    };
    let plain = decompress(reader).map_err(stream)?;
    // Hash below the buffer: bytes are hashed when read from the stream, so what the buffer
    // still holds at the end is already counted and the drain below adds the rest.
    let hashed = BufReader::with_capacity(128 * 1024, HashingReader::new(plain));
    let spread = slow_inode_reuse(dest);
    if spread {
        spread_subdirs(dest);
    }
    let mut sink = LayerSink {
        dest,
        privileges,
        dir_times: Vec::new(),
        spread,
    };
    let done = extract(hashed, NamePolicy::Strict, &mut sink).map_err(|e| match e {
        ExtractError::Sink(e) => e,
        ExtractError::Archive(e) => archive_error(e),
    })?;
    let (diff_id, size) = done.rest.into_inner().drain_and_finish().map_err(stream)?;
    Ok(LayerDigest { diff_id, size })
}

/// What a bad layer tar is called here.
pub(crate) fn archive_error(e: ArchiveError) -> OciError {
    let lossy = |name: &rbuild_types::ByteString| name.lossy().into_owned();
    match e {
        ArchiveError::Read { source } => OciError::Stream {
            what: "layer",
            source,
        },
        ArchiveError::Truncated { detail } => OciError::Stream {
            what: "layer",
            source: io::Error::new(io::ErrorKind::UnexpectedEof, detail),
        },
        ArchiveError::Name { entry, reason } | ArchiveError::LinkTarget { entry, reason, .. } => {
            OciError::Escape {
                entry: lossy(&entry),
                reason: reason.reason(),
            }
        }
        ArchiveError::NoLinkTarget { entry, kind } => OciError::Invalid {
            what: if kind == "symlink" {
                "symlink without target"
            } else {
                "hardlink without target"
            },
            context: "layer".into(),
            value: lossy(&entry),
        },
        ArchiveError::Unsupported { entry, flag } => OciError::UnsupportedEntry {
            entry: lossy(&entry),
            kind: format!("{flag:?}"),
        },
        ArchiveError::Header { entry, field } => OciError::TarEntry {
            entry: lossy(&entry),
            source: io::Error::new(io::ErrorKind::InvalidData, format!("invalid {field} field")),
        },
    }
}

/// Removes whatever is at `path` (a directory recursively), if anything.
fn remove_existing(path: &Path) -> Result<(), OciError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(OciError::io("remove", path)),
        Ok(_) => fs::remove_file(path).map_err(OciError::io("remove", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(OciError::Io {
            op: "stat",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Places layer entries in overlayfs upper-dir format below `dest`.
struct LayerSink<'a> {
    dest: &'a Path,
    privileges: &'a Privileges,
    /// Directories and the mtimes they end with (set last: creating children changes them).
    dir_times: Vec<(PathBuf, u64)>,
    /// Whether each directory made spreads its subdirectories over the filesystem (see
    /// `rbuild_cache::placement`): an unpack right after a prune then does not fill the block
    /// groups just freed.
    spread: bool,
}

impl LayerSink<'_> {
    /// `.wh.<hidden>` in `parent`: a 0:0 character device named `hidden`.
    fn whiteout(&self, parent: &Path, hidden: &[u8], e: &Entry) -> Result<(), OciError> {
        if hidden.is_empty() || hidden == b".." || hidden == b"." {
            return Err(OciError::Escape {
                entry: e.name.lossy().into_owned(),
                reason: "whiteout of an invalid name",
            });
        }
        let target = parent.join(std::ffi::OsStr::from_bytes(hidden));
        remove_existing(&target)?;
        make_node(&target, SFlag::S_IFCHR, 0, 0, 0).map_err(OciError::io(
            "create whiteout (needs root or CAP_MKNOD)",
            &target,
        ))?;
        lchown(&target, e.uid, e.gid, self.privileges).map_err(OciError::io("chown", &target))?;
        set_mtime(&target, e.mtime).map_err(OciError::io("set mtime of", &target))
    }

    /// Creates the entry at `path` (nothing is there, or a directory for a directory).
    /// Returns whether the entry owns its metadata (not a hard link, not a left-out device).
    fn create(
        &self,
        e: &Entry,
        path: &Path,
        existing_dir: bool,
        contents: &mut dyn Read,
    ) -> Result<bool, OciError> {
        match &e.kind {
            EntryKind::Dir => {
                if !existing_dir {
                    fs::create_dir(path).map_err(OciError::io("create directory", path))?;
                    if self.spread {
                        spread_subdirs(path);
                    }
                }
            }
            EntryKind::File => {
                let mut file = File::create(path).map_err(OciError::io("create", path))?;
                io::copy(contents, &mut file).map_err(OciError::io("write", path))?;
            }
            EntryKind::Symlink { target } => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path)
                    .map_err(OciError::io("create symlink", path))?;
            }
            EntryKind::HardLink { target } => {
                prepare_parents(self.dest, target.as_path(), &e.name.lossy())?;
                let source = self.dest.join(target.as_path());
                fs::hard_link(&source, path).map_err(OciError::io("create hardlink", path))?;
                return Ok(false); // shares the inode (and its metadata) with its target
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                let flag = if matches!(e.kind, EntryKind::CharDevice { .. }) {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                match make_node(path, flag, e.mode, u64::from(*major), u64::from(*minor)) {
                    // Without root (or in a user namespace: rootless rbuild) device nodes cannot
                    // be created (CAP_MKNOD in the initial namespace): the entry is left out
                    // of the snapshot rather than failing the whole image.
                    Err(err)
                        if !self.privileges.is_host_root()
                            && err.raw_os_error() == Some(libc::EPERM) =>
                    {
                        return Ok(false)
                    }
                    res => res.map_err(OciError::io("create device node", path))?,
                }
            }
            EntryKind::Fifo => make_node(path, SFlag::S_IFIFO, e.mode, 0, 0)
                .map_err(OciError::io("create device node", path))?,
        }
        Ok(true)
    }
}

impl Sink for LayerSink<'_> {
    type Error = OciError;

    fn entry(&mut self, e: &Entry, contents: &mut dyn Read) -> Result<(), OciError> {
        let rel = e.path.as_path();
        let Some(file_name) = e.path.file_name().map(OsStrExt::as_bytes) else {
            return Ok(());
        };
        prepare_parents(self.dest, rel, &e.name.lossy())?;
        let parent = self.dest.join(e.path.parent());
        if file_name == OPAQUE_MARKER.as_bytes() {
            // `user.overlay.opaque` in a user namespace (rootless), where overlayfs is mounted
            // with `userxattr`.
            let name = rbuild_cache::overlay::opaque_xattr(self.privileges);
            return set_xattr(&parent, name, b"y", self.privileges)
                .map_err(OciError::io("mark opaque", &parent));
        }
        if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&parent, hidden, e);
        }
        let path = self.dest.join(rel);
        let existing_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        let is_dir = e.kind == EntryKind::Dir;
        if !(is_dir && existing_dir) {
            remove_existing(&path)?;
        }
        if !self.create(e, &path, existing_dir, contents)? {
            return Ok(());
        }
        lchown(&path, e.uid, e.gid, self.privileges).map_err(OciError::io("chown", &path))?;
        if !matches!(e.kind, EntryKind::Symlink { .. }) {
            fs::set_permissions(&path, fs::Permissions::from_mode(e.mode))
                .map_err(OciError::io("chmod", &path))?;
        }
        for (k, v) in &e.xattrs {
            set_xattr(&path, k, v, self.privileges).map_err(OciError::io("set xattr on", &path))?;
        }
        if is_dir {
            self.dir_times.push((path, e.mtime));
            return Ok(());
        }
        set_mtime(&path, e.mtime).map_err(OciError::io("set mtime of", &path))
    }

    fn finish(&mut self) -> Result<(), OciError> {
        // Directory mtimes last: creating children changes them.
        for (path, mtime) in self.dir_times.iter().rev() {
            set_mtime(path, *mtime).map_err(OciError::io("set mtime of", path))?;
        }
        Ok(())
    }
}
