//! Unpacking a layer tar (plain, gzip or zstd) into a directory in overlayfs upper-dir format.
//!
//! Invariants: nothing is ever written outside `dest` (absolute names, `..` and paths through
//! symlinks are rejected); `.wh.x` becomes a 0:0 character device `x`, `.wh..wh..opq` becomes
//! `trusted.overlay.opaque=y` on its directory; the returned diff_id is the SHA-256 of the whole
//! uncompressed stream, trailing padding included.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::SFlag;
use tar::EntryType;

use super::meta::{is_root, lchown, make_node, set_mtime, set_xattr};
use super::paths::{clean_entry_name, prepare_parents};
use super::{LayerDigest, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::compress::decompress;
use crate::digest_io::HashingReader;
use crate::OciError;

/// Unpacks the layer tar read from `reader` (compression detected by magic bytes) into `dest`
/// (which must exist) and returns the digest and size of the uncompressed tar.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<LayerDigest, OciError> {
    let stream = |source| OciError::Stream {
        what: "layer",
        source,
    };
    let plain = decompress(reader).map_err(stream)?;
    // Hash below the buffer: bytes are hashed when read from the stream, so what the buffer
    // still holds at the end is already counted and the drain below adds the rest.
    let mut archive = tar::Archive::new(io::BufReader::with_capacity(
        128 * 1024,
        HashingReader::new(plain),
    ));
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    for entry in archive.entries().map_err(stream)? {
        let mut entry = entry.map_err(stream)?;
        if let Some(dir) = unpack_entry(&mut entry, dest)? {
            dir_times.push(dir);
        }
    }
    // Directory mtimes last: creating children changes them.
    for (path, mtime) in dir_times.iter().rev() {
        set_mtime(path, *mtime).map_err(OciError::io("set mtime of", path))?;
    }
    let (diff_id, size) = archive
        .into_inner()
        .into_inner()
        .drain_and_finish()
        .map_err(stream)?;
    Ok(LayerDigest { diff_id, size })
}

/// PAX values we honour beyond what the tar crate applies itself (path, linkpath, size).
#[derive(Default)]
struct Pax {
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<u64>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

fn read_pax<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Pax, OciError> {
    let mut pax = Pax::default();
    let err = |source| OciError::TarEntry {
        entry: name.to_string(),
        source,
    };
    let Some(exts) = entry.pax_extensions().map_err(err)? else {
        return Ok(pax);
    };
    for ext in exts {
        let ext = ext.map_err(err)?;
        let Ok(key) = ext.key() else { continue };
        let value = ext.value_bytes();
        let number = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.split('.').next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        match key {
            "uid" => pax.uid = number(),
            "gid" => pax.gid = number(),
            "mtime" => pax.mtime = number(),
            _ => {
                if let Some(x) = key.strip_prefix("SCHILY.xattr.") {
                    pax.xattrs.insert(x.to_string(), value.to_vec());
                }
            }
        }
    }
    Ok(pax)
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

/// Unpacks one entry; returns a directory whose mtime must be set at the end.
fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dest: &Path,
) -> Result<Option<(PathBuf, u64)>, OciError> {
    let raw = entry
        .path()
        .map_err(|source| OciError::TarEntry {
            entry: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            source,
        })?
        .into_owned();
    let name = raw.to_string_lossy().into_owned();
    let kind = entry.header().entry_type();
    if matches!(kind, EntryType::XGlobalHeader) {
        return Ok(None);
    }
    let rel = clean_entry_name(&raw)?;
    let Some(file_name) = rel.file_name().map(|f| f.as_bytes().to_vec()) else {
        return Ok(None); // the root directory itself
    };
    prepare_parents(dest, &rel, &name)?;
    let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
    if file_name == OPAQUE_MARKER.as_bytes() {
        // `user.overlay.opaque` in a user namespace (rootless), where overlayfs is mounted
        // with `userxattr`.
        set_xattr(&parent, rbuild_cache::overlay::opaque_xattr(), b"y")
            .map_err(OciError::io("mark opaque", &parent))?;
        return Ok(None);
    }
    if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        let target = parent.join(std::ffi::OsStr::from_bytes(hidden));
        if hidden.is_empty() || hidden.contains(&b'/') || hidden == b".." || hidden == b"." {
            return Err(OciError::Escape {
                entry: name,
                reason: "whiteout of an invalid name",
            });
        }
        remove_existing(&target)?;
        make_node(&target, SFlag::S_IFCHR, 0, 0, 0).map_err(OciError::io(
            "create whiteout (needs root or CAP_MKNOD)",
            &target,
        ))?;
        let header = entry.header();
        if let (Ok(uid), Ok(gid), Ok(mtime)) = (header.uid(), header.gid(), header.mtime()) {
            lchown(&target, uid, gid).map_err(OciError::io("chown", &target))?;
            set_mtime(&target, mtime).map_err(OciError::io("set mtime of", &target))?;
        }
        return Ok(None);
    }
    let path = dest.join(&rel);
    let pax = read_pax(entry, &name)?;
    let header = entry.header();
    let entry_err = |source| OciError::TarEntry {
        entry: name.clone(),
        source,
    };
    let mode = header.mode().map_err(entry_err)? & 0o7777;
    let uid = pax
        .uid
        .map_or_else(|| header.uid(), Ok)
        .map_err(entry_err)?;
    let gid = pax
        .gid
        .map_or_else(|| header.gid(), Ok)
        .map_err(entry_err)?;
    let mtime = pax
        .mtime
        .map_or_else(|| header.mtime(), Ok)
        .map_err(entry_err)?;
    let existing_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
    if !(kind == EntryType::Directory && existing_dir) {
        remove_existing(&path)?;
    }
    match kind {
        EntryType::Directory => {
            if !existing_dir {
                fs::create_dir(&path).map_err(OciError::io("create directory", &path))?;
            }
        }
        EntryType::Regular | EntryType::Continuous => {
            let mut file = File::create(&path).map_err(OciError::io("create", &path))?;
            io::copy(entry, &mut file).map_err(OciError::io("write", &path))?;
        }
        EntryType::Symlink => {
            let target =
                entry
                    .link_name()
                    .map_err(entry_err)?
                    .ok_or_else(|| OciError::Invalid {
                        what: "symlink without target",
                        context: "layer".into(),
                        value: name.clone(),
                    })?;
            std::os::unix::fs::symlink(&target, &path)
                .map_err(OciError::io("create symlink", &path))?;
        }
        EntryType::Link => {
            let target =
                entry
                    .link_name()
                    .map_err(entry_err)?
                    .ok_or_else(|| OciError::Invalid {
                        what: "hardlink without target",
                        context: "layer".into(),
                        value: name.clone(),
                    })?;
            let target_rel = clean_entry_name(&target)?;
            prepare_parents(dest, &target_rel, &name)?;
            let source = dest.join(&target_rel);
            fs::hard_link(&source, &path).map_err(OciError::io("create hardlink", &path))?;
            return Ok(None); // shares the inode (and its metadata) with its target
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let (flag, major, minor) = match kind {
                EntryType::Fifo => (SFlag::S_IFIFO, 0, 0),
                k => {
                    let major = header.device_major().map_err(entry_err)?.unwrap_or(0);
                    let minor = header.device_minor().map_err(entry_err)?.unwrap_or(0);
                    let flag = if k == EntryType::Char {
                        SFlag::S_IFCHR
                    } else {
                        SFlag::S_IFBLK
                    };
                    (flag, u64::from(major), u64::from(minor))
                }
            };
            match make_node(&path, flag, mode, major, minor) {
                // Without root (or in a user namespace: rootless rbuild) device nodes cannot
                // be created (CAP_MKNOD in the initial namespace): the entry is left out
                // of the snapshot rather than failing the whole image.
                Err(e)
                    if flag != SFlag::S_IFIFO
                        && !is_root()
                        && e.raw_os_error() == Some(libc::EPERM) =>
                {
                    return Ok(None)
                }
                res => res.map_err(OciError::io("create device node", &path))?,
            }
        }
        other => {
            return Err(OciError::UnsupportedEntry {
                entry: name,
                kind: format!("{other:?}"),
            })
        }
    }
    lchown(&path, uid, gid).map_err(OciError::io("chown", &path))?;
    if kind != EntryType::Symlink {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(OciError::io("chmod", &path))?;
    }
    for (k, v) in &pax.xattrs {
        set_xattr(&path, k, v).map_err(OciError::io("set xattr on", &path))?;
    }
    if kind == EntryType::Directory {
        return Ok(Some((path, mtime)));
    }
    set_mtime(&path, mtime).map_err(OciError::io("set mtime of", &path))?;
    Ok(None)
}
