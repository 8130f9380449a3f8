//! Writing a snapshot directory (overlayfs upper-dir format) as a layer tar: a depth-first walk
//! with children sorted by name bytes, so parents come first and the bytes depend only on the
//! tree (names, contents, mode, numeric owners, mtimes, xattrs).

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rbuild_archive::TarEmitter;

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
pub fn write_tar_clamped(
    dir: &Path,
    out: impl Write,
    mtime_clamp: Option<u64>,
) -> Result<LayerDigest, OciError> {
    let mut emitter = TarEmitter::new(out, mtime_clamp);
    walk_dir(&mut emitter, dir, &[])?;
    Ok(emitter.finish()?.0)
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

/// Sorted (name, path) children of a directory.
pub fn sorted_children(dir: &Path) -> Result<Vec<(Vec<u8>, std::path::PathBuf)>, OciError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(OciError::io("read directory", dir))? {
        let entry = entry.map_err(OciError::io("read directory", dir))?;
        names.push((entry.file_name().as_bytes().to_vec(), entry.path()));
    }
    names.sort();
    Ok(names)
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut rel = prefix.to_vec();
    if !rel.is_empty() {
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    rel
}

fn walk_dir<W: Write>(
    emitter: &mut TarEmitter<W>,
    dir: &Path,
    prefix: &[u8],
) -> Result<(), OciError> {
    for (name, path) in sorted_children(dir)? {
        let meta = std::fs::symlink_metadata(&path).map_err(OciError::io("stat", &path))?;
        if is_whiteout(&meta) {
            let mut wh = WHITEOUT_PREFIX.as_bytes().to_vec();
            wh.extend_from_slice(&name);
            emitter.emit_marker(&join(prefix, &wh), &meta)?;
            continue;
        }
        let rel = join(prefix, &name);
        emit(emitter, &rel, &path, &meta)?;
        if meta.is_dir() {
            let opaque = is_opaque_dir(&path).map_err(|source| OciError::Io {
                op: "read xattrs of",
                path: path.clone(),
                source,
            })?;
            if opaque {
                emitter.emit_marker(&join(&rel, OPAQUE_MARKER.as_bytes()), &meta)?;
            }
            walk_dir(emitter, &path, &rel)?;
        }
    }
    Ok(())
}
