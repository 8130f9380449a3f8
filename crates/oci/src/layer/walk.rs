//! Writing a snapshot directory (overlayfs upper-dir format) as a layer tar: a depth-first walk
//! with children sorted by name bytes, so parents come first and the bytes depend only on the
//! tree (names, contents, mode, numeric owners, mtimes, xattrs). Each child is looked up
//! relative to its directory (stat through the directory's descriptor, a regular file opened
//! with `openat` and its xattrs read from the open file): a 25,000-file layer would otherwise
//! walk every path from `/` three times.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use rbuild_cache::overlay::content_xattrs_of;

use rbuild_archive::{FileBytes, TarEmitter, Xattrs};

use super::ahead;
use super::meta::{is_opaque_dir, layer_xattrs};
use super::{LayerDigest, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::OciError;

/// Writes `dir` as an uncompressed, deterministic layer tar to `out`; overlayfs whiteouts
/// become `.wh.` files and opaque directories get a `.wh..wh..opq` marker. Returns the digest
/// (diff_id) and size of the tar stream.
pub fn write_tar(dir: &Path, out: impl Write) -> Result<LayerDigest, OciError> {
    write_tar_clamped(dir, out, None)
}

/// [`write_tar`] with every mtime later than `mtime_clamp` (SOURCE_DATE_EPOCH) lowered to it.
///
/// The walk runs on a thread of its own, ahead of the stream (see [`ahead`]): listing,
/// stat, open, xattrs and reading small files overlap with writing the stream and its
/// SHA-256, which take the other half of the time.
pub fn write_tar_clamped(
    dir: &Path,
    out: impl Write,
    mtime_clamp: Option<u64>,
) -> Result<LayerDigest, OciError> {
    let mut emitter = TarEmitter::new(out, mtime_clamp);
    ahead::walk(dir, |entry| emit_walked(&mut emitter, entry))?;
    Ok(emitter.finish()?.0)
}

/// Writes one entry the walk found.
pub(super) fn emit_walked<W: Write>(
    emitter: &mut TarEmitter<W>,
    entry: Walked,
) -> Result<(), OciError> {
    match entry {
        Walked::File {
            rel,
            path,
            meta,
            xattrs,
            bytes,
        } => Ok(emitter.emit_file(&rel, &path, &meta, xattrs, || Ok(bytes))?),
        Walked::Marker { rel, meta } => Ok(emitter.emit_marker(&rel, &meta)?),
        Walked::Other { rel, path, meta } => emit(emitter, &rel, &path, &meta),
    }
}

/// Emits one snapshot file with the xattrs that belong in a layer.
pub(crate) fn emit<W: Write>(
    emitter: &mut TarEmitter<W>,
    rel: &[u8],
    host: &Path,
    meta: &std::fs::Metadata,
) -> Result<(), OciError> {
    let xattrs = layer_xattrs(host).map_err(|source| OciError::Io {
        op: "read xattrs of",
        path: host.to_path_buf(),
        source,
    })?;
    Ok(emitter.emit(rel, host, meta, xattrs)?)
}

/// Whether an lstat result is an overlayfs whiteout (a 0:0 character device).
pub fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut rel = prefix.to_vec();
    if !rel.is_empty() {
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    rel
}

/// Sorted children of a directory, with their types as the listing gives them (no stat).
fn sorted_entries(dir: &Path) -> Result<Vec<Child>, OciError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(OciError::io("read directory", dir))? {
        let entry = entry.map_err(OciError::io("read directory", dir))?;
        let path = entry.path();
        let listed_file = entry.file_type().is_ok_and(|t| t.is_file());
        out.push(Child {
            name: entry.file_name().as_bytes().to_vec(),
            path,
            entry,
            listed_file,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

struct Child {
    name: Vec<u8>,
    path: PathBuf,
    entry: std::fs::DirEntry,
    /// Listed as a regular file: opened first and stat'ed through the open file.
    listed_file: bool,
}

impl Child {
    /// The child's lstat metadata and, for a file listed as regular, the file open for
    /// reading (`fstat` of it: one name lookup instead of two); anything else is stat'ed
    /// through the directory's descriptor (`fstatat`).
    fn described(&self, dir: &File) -> Result<(std::fs::Metadata, Option<File>), OciError> {
        if self.listed_file {
            let file = open_in(dir, &self.name).map_err(OciError::io("open", &self.path))?;
            let meta = file.metadata().map_err(OciError::io("stat", &self.path))?;
            return Ok((meta, Some(file)));
        }
        let meta = self
            .entry
            .metadata()
            .map_err(OciError::io("stat", &self.path))?;
        Ok((meta, None))
    }
}

/// Opens regular file `name` of the directory open as `dir` for reading, without following a
/// symlink put there since it was listed, and without updating its access time where the
/// caller may (`O_NOATIME`: the owner or `CAP_FOWNER`). A snapshot file hard-linked into a
/// new snapshot has a new ctime, so under `relatime` every read would otherwise write its
/// inode back.
fn open_in(dir: &File, name: &[u8]) -> std::io::Result<File> {
    let name = std::ffi::OsStr::from_bytes(name);
    // O_NONBLOCK: should a FIFO have taken the file's place since it was listed, the open does not
    // wait for a writer (the fstat after it then finds no regular file).
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK;
    let fd = match nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOATIME,
        Mode::empty(),
    ) {
        Err(nix::errno::Errno::EPERM) => {
            nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags, Mode::empty())?
        }
        other => other?,
    };
    // SAFETY: `openat` just returned this descriptor, owned by no one else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// One entry of a snapshot, in tar order, with what its tar entry needs.
pub(super) enum Walked {
    /// A regular file, open or read whole, with its layer xattrs.
    File {
        rel: Vec<u8>,
        path: PathBuf,
        meta: std::fs::Metadata,
        xattrs: Xattrs,
        bytes: FileBytes,
    },
    /// A whiteout (`rel` already `.wh.`-named) or an opaque directory's marker.
    Marker {
        rel: Vec<u8>,
        meta: std::fs::Metadata,
    },
    /// A directory, symlink or device (its xattrs are read when it is written).
    Other {
        rel: Vec<u8>,
        path: PathBuf,
        meta: std::fs::Metadata,
    },
}

/// Regular files up to this size are read whole by the walk; larger ones are handed over
/// open and streamed by the writer (bounds the memory in flight, see [`ahead`]).
const READ_WHOLE: u64 = 32 * 1024;

/// Walks `dir` depth-first, children sorted by name, handing each entry to `out` in order.
pub(super) fn walk_dir(
    dir: &Path,
    prefix: &[u8],
    out: &mut impl FnMut(Walked) -> Result<(), OciError>,
) -> Result<(), OciError> {
    let handle = File::open(dir).map_err(OciError::io("open directory", dir))?;
    for child in sorted_entries(dir)? {
        let (meta, opened) = child.described(&handle)?;
        let Child { name, path, .. } = child;
        if meta.is_file() {
            let rel = join(prefix, &name);
            let file = match opened {
                Some(file) => file,
                None => open_in(&handle, &name).map_err(OciError::io("open", &path))?,
            };
            let xattrs = content_xattrs_of(&file).map_err(|source| OciError::Io {
                op: "read xattrs of",
                path: path.clone(),
                source,
            })?;
            let bytes = if meta.len() <= READ_WHOLE {
                FileBytes::Loaded(
                    read_whole(file, meta.len()).map_err(OciError::io("read", &path))?,
                )
            } else {
                FileBytes::Open(file)
            };
            out(Walked::File {
                rel,
                path,
                meta,
                xattrs,
                bytes,
            })?;
            continue;
        }
        if is_whiteout(&meta) {
            let mut wh = WHITEOUT_PREFIX.as_bytes().to_vec();
            wh.extend_from_slice(&name);
            out(Walked::Marker {
                rel: join(prefix, &wh),
                meta,
            })?;
            continue;
        }
        let rel = join(prefix, &name);
        if !meta.is_dir() {
            out(Walked::Other { rel, path, meta })?;
            continue;
        }
        let opaque = is_opaque_dir(&path).map_err(|source| OciError::Io {
            op: "read xattrs of",
            path: path.clone(),
            source,
        })?;
        out(Walked::Other {
            rel: rel.clone(),
            path: path.clone(),
            meta: meta.clone(),
        })?;
        if opaque {
            out(Walked::Marker {
                rel: join(&rel, OPAQUE_MARKER.as_bytes()),
                meta,
            })?;
        }
        walk_dir(&path, &rel, out)?;
    }
    Ok(())
}

/// Reads up to `size` bytes of `file` (fewer if it shrank: the writer reports that).
fn read_whole(file: File, size: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(size).read_to_end(&mut bytes)?;
    Ok(bytes)
}
