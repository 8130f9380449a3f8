//! ADD's archive extraction (Docker semantics): a source that is a regular file holding a tar
//! archive — plain, gzip, bzip2, xz or zstd, recognised by its content, never its name — is
//! extracted into the destination directory instead of being copied.
//!
//! Entries are written into the file op's upper dir. Invariants:
//! - no entry lands outside the destination: a path or hard-link target climbing out of it
//!   (`..`) is an error; an entry's parent directories resolve as in Docker's untar, which
//!   BuildKit runs chrooted into the destination: symlinks on the way (the image's, and those
//!   the archive created) are followed with the destination as their root
//!   ([`rbuild_types::root_path`]), so `bin/tool` lands in `usr/bin` on a merged-/usr base,
//!   and nothing is written through a symlink on the host;
//! - the last component is not followed: an entry replaces what is there (a directory entry
//!   merges with a directory), as in Docker;
//! - an archive cannot forge overlay whiteouts: `.wh.`-prefixed names and 0/0 character
//!   devices are refused;
//! - parent directories that exist below keep their metadata (`ensure_dir`); directories,
//!   files and links from the archive keep its modes, owners and mtimes, owners replaced by
//!   `--chown` when given.

use std::fs::{self, File};
use std::io::{self, Cursor, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rbuild_context::{decoder, detect_archive};
use rbuild_types::root_path::Follow;
use tar::EntryType;

use crate::fileop::write::{create_replacing, finish_fd, FileAttrs, InTheWay};
use crate::fileop::{chown, io_err, remove_existing, set_times, FileOpError, FileOpRunner};
use crate::owner::Owner;

/// Opens `host_path` and returns its decoded tar stream, or `None` when the file is not an
/// archive (no known magic, or the decoded start is not a valid tar header).
fn open_tar(host_path: &Path) -> Result<Option<Box<dyn Read>>, FileOpError> {
    let mut file = File::open(host_path).map_err(io_err(host_path))?;
    let mut head = Vec::with_capacity(512);
    (&mut file)
        .take(512)
        .read_to_end(&mut head)
        .map_err(io_err(host_path))?;
    let Some(format) = detect_archive(&head) else {
        return Ok(None);
    };
    let Ok(mut decoded) = decoder(format, Cursor::new(head).chain(file)) else {
        return Ok(None);
    };
    let mut block = Vec::with_capacity(512);
    if (&mut decoded).take(512).read_to_end(&mut block).is_err() || !valid_header(&block) {
        return Ok(None);
    }
    Ok(Some(Box::new(Cursor::new(block).chain(decoded))))
}

/// Whether `block` is one 512-byte tar header with a correct checksum (what Go's
/// `tar.Reader.Next` needs to succeed, Docker's test for "is an archive").
fn valid_header(block: &[u8]) -> bool {
    if block.len() != 512 {
        return false;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    sum == stored
}

/// An archive entry's path relative to the destination, `None` when it climbs out of it.
/// Leading `/` and `./` are dropped, as Docker does.
fn inside(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
        }
    }
    Some(out)
}

impl FileOpRunner<'_> {
    /// Extracts the archive at `host_path` into the image directory `dest` when the file is
    /// an archive; returns `false` (nothing written) when it is not one.
    pub(crate) fn extract_archive(
        &self,
        host_path: &Path,
        dest: &Path,
        owner: Option<Owner>,
    ) -> Result<bool, FileOpError> {
        let Some(stream) = open_tar(host_path)? else {
            return Ok(false);
        };
        let bad = |source: io::Error| FileOpError::Archive {
            path: host_path.to_path_buf(),
            source,
        };
        let escape = |entry: &str, why: &str| FileOpError::ArchiveEntry {
            path: host_path.to_path_buf(),
            entry: entry.to_string(),
            why: why.to_string(),
        };
        self.ensure_dir(dest, owner)?;
        let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
        let mut archive = tar::Archive::new(stream);
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(rel) = inside(&name) else {
                return Err(escape(&name, "its path climbs out of the destination"));
            };
            let kind = entry.header().entry_type();
            if rel.as_os_str().is_empty() {
                // `./` itself: the destination keeps its metadata.
                continue;
            }
            if rel
                .file_name()
                .is_some_and(|n| n.as_bytes().starts_with(b".wh."))
            {
                return Err(escape(&name, "names starting with .wh. are whiteouts"));
            }
            let parent = rel.parent().unwrap_or(Path::new(""));
            let parent = self.resolve_below(dest, parent, Follow::Last)?;
            self.ensure_dir(&parent, owner)
                .map_err(|_| escape(&name, "a parent is not a directory"))?;
            let target = match rel.file_name() {
                Some(file) => parent.join(file),
                None => parent,
            };
            let up = self.upper_path(&target)?;
            let header = entry.header();
            let mode = header.mode().map_err(bad)? & 0o7777;
            let (uid, gid) = match owner {
                Some(o) => (o.uid, o.gid),
                // An empty numeric field is 0, as for Go's tar reader.
                None => (
                    header.uid().unwrap_or(0) as u32,
                    header.gid().unwrap_or(0) as u32,
                ),
            };
            let mtime = header.mtime().unwrap_or(0);
            match kind {
                EntryType::Directory => {
                    if !fs::symlink_metadata(&up).is_ok_and(|m| m.is_dir()) {
                        remove_existing(&up)?;
                        self.make_dir(&up)?;
                    }
                    set_mode(&up, mode)?;
                    chown(&up, uid, gid)?;
                    dir_times.push((up, mtime));
                    continue;
                }
                EntryType::Regular | EntryType::Continuous => {
                    let mut out =
                        create_replacing(&up, InTheWay::RemoveDirectory).map_err(io_err(&up))?;
                    io::copy(&mut entry, &mut out).map_err(bad)?;
                    let attrs = FileAttrs {
                        mode,
                        owner: Some((uid, gid)),
                    };
                    finish_fd(&out, attrs, mtime as i64, 0).map_err(io_err(&up))?;
                    continue;
                }
                EntryType::Symlink => {
                    let link = entry
                        .link_name()
                        .map_err(bad)?
                        .ok_or_else(|| escape(&name, "a symlink without a target"))?;
                    remove_existing(&up)?;
                    symlink(&link, &up).map_err(io_err(&up))?;
                    chown(&up, uid, gid)?;
                }
                EntryType::Link => {
                    let link = entry
                        .link_name()
                        .map_err(bad)?
                        .ok_or_else(|| escape(&name, "a hard link without a target"))?;
                    let Some(link_rel) = inside(&link.to_string_lossy()) else {
                        return Err(escape(&name, "its hard-link target is outside the archive"));
                    };
                    let source = self.resolve_below(dest, &link_rel, Follow::NotLast)?;
                    let source = self.upper_path(&source)?;
                    remove_existing(&up)?;
                    fs::hard_link(&source, &up).map_err(io_err(&source))?;
                    continue;
                }
                EntryType::Char | EntryType::Block | EntryType::Fifo => {
                    let major = header.device_major().map_err(bad)?.unwrap_or(0);
                    let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
                    if kind == EntryType::Char && major == 0 && minor == 0 {
                        return Err(escape(&name, "a 0/0 character device is a whiteout"));
                    }
                    remove_existing(&up)?;
                    let fmt = match kind {
                        EntryType::Char => libc::S_IFCHR,
                        EntryType::Block => libc::S_IFBLK,
                        _ => libc::S_IFIFO,
                    };
                    mknod(&up, fmt | mode, libc::makedev(major, minor))?;
                    chown(&up, uid, gid)?;
                }
                // PAX/GNU extension headers are consumed by the reader; anything else
                // (sparse files, vendor types) is refused rather than half-extracted.
                EntryType::XGlobalHeader => continue,
                other => {
                    return Err(escape(
                        &name,
                        &format!("entry type {:?} is not supported", other.as_byte() as char),
                    ))
                }
            }
            set_times(&up, mtime as i64, 0)?;
        }
        // Directory mtimes last: writing entries into a directory changes its mtime.
        for (dir, mtime) in dir_times.iter().rev() {
            set_times(dir, *mtime as i64, 0)?;
        }
        Ok(true)
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), FileOpError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

fn c_path(path: &Path) -> Result<std::ffi::CString, FileOpError> {
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| FileOpError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })
}

fn mknod(path: &Path, mode: u32, dev: libc::dev_t) -> Result<(), FileOpError> {
    let c = c_path(path)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    if unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, dev) } != 0 {
        return Err(io_err(path)(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_paths() {
        assert_eq!(inside("./a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(inside("/etc/x"), Some(PathBuf::from("etc/x")));
        assert_eq!(inside("a/../b"), Some(PathBuf::from("b")));
        assert_eq!(inside("../x"), None);
        assert_eq!(inside("a/../../x"), None);
        assert_eq!(inside("./"), Some(PathBuf::new()));
    }

    #[test]
    fn headers() {
        assert!(!valid_header(&[0u8; 512]));
        assert!(!valid_header(b"hello"));
        let mut h = tar::Header::new_ustar();
        assert!(h.set_path("a").is_ok());
        h.set_size(0);
        h.set_cksum();
        assert!(valid_header(h.as_bytes()));
    }
}
