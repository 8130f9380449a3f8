//! Reading one directory of a context: its children decided by the filter and described.
//!
//! The directory is opened once (by its full path, so no descriptor is held per level) and
//! read with `getdents64`; each child is decided first (its kind comes from the directory
//! entry, so a skipped child costs no system call) and then described with `fstatat`
//! relative to the directory descriptor (never following a symlink, no path lookup per file)
//! and `readlinkat` for symlinks. Decisions reuse the parent directory's pattern hits
//! ([`DirState`]); below a directory that no pattern can touch nothing is matched at all.

use std::ffi::OsStr;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};

use crate::entry::EntryKind;
use crate::error::ContextError;
use crate::filter::{Decision, DirState, Filter};
use crate::table::Meta;

/// Below this many names a directory's children are described on the calling thread.
const PARALLEL_MIN: usize = 512;

/// A child found in a directory, decided and described.
pub(crate) struct Listed {
    pub rel: String,
    pub meta: Meta,
    pub dev: u64,
    pub link: Option<Box<str>>,
    pub decision: Decision,
}

/// Reads directory `rel` (`""` for the root) and decides and describes each child. The
/// result is sorted by name; skipped and special children are left out.
pub(crate) fn list_dir(
    root: &Path,
    rel: &str,
    filter: &Filter,
    state: &DirState,
) -> Result<Vec<Option<Listed>>, ContextError> {
    let path = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let io = |e: rustix::io::Errno| ContextError::Io {
        path: path.clone(),
        source: e.into(),
    };
    // The root may be reached through a symlink; nothing below it is followed.
    let nofollow = if rel.is_empty() {
        OFlags::empty()
    } else {
        OFlags::NOFOLLOW
    };
    let fd = rustix::fs::open(
        &path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | nofollow,
        Mode::empty(),
    )
    .map_err(io)?;
    let mut names: Vec<(String, FileType)> = Vec::new();
    // Reads through this descriptor (no reopen); `fstatat` below uses it too, which the
    // directory stream's position does not affect.
    let mut dir = Dir::new(fd).map_err(io)?;
    while let Some(dent) = dir.read() {
        let dent = dent.map_err(io)?;
        let name = dent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let name = std::str::from_utf8(name).map_err(|_| ContextError::NonUtf8 {
            path: path.join(OsStr::from_bytes(name)),
        })?;
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        names.push((child, dent.file_type()));
    }
    let fd = dir.fd().map_err(io)?;
    let describe =
        |(child, ft): (String, FileType)| describe_child(root, fd, child, ft, filter, state);
    let mut items: Vec<Option<Listed>> = if names.len() >= PARALLEL_MIN {
        names
            .into_par_iter()
            .map(describe)
            .collect::<Result<_, _>>()?
    } else {
        names.into_iter().map(describe).collect::<Result<_, _>>()?
    };
    items.retain(Option::is_some);
    items.sort_unstable_by(|a, b| match (a, b) {
        (Some(a), Some(b)) => a.rel.cmp(&b.rel),
        _ => std::cmp::Ordering::Equal,
    });
    Ok(items)
}

/// Decides one child and, unless skipped, describes it from `fstatat` on its directory.
fn describe_child(
    root: &Path,
    dir: BorrowedFd<'_>,
    rel: String,
    ft: FileType,
    filter: &Filter,
    state: &DirState,
) -> Result<Option<Listed>, ContextError> {
    let name = rel.rsplit('/').next().unwrap_or(&rel);
    let stat = |name: &str| {
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| ContextError::Io {
            path: root.join(&rel),
            source: e.into(),
        })
    };
    let decide = |is_dir: bool| {
        if state.keeps_all() {
            Decision::Keep
        } else {
            filter.decide_in(state, &rel, is_dir)
        }
    };
    let (mut decision, early) = match ft {
        FileType::Directory => (decide(true), None),
        FileType::RegularFile | FileType::Symlink => (decide(false), None),
        FileType::Unknown => {
            let st = stat(name)?;
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            (decide(is_dir), Some(st))
        }
        _ => return Ok(None),
    };
    if decision == Decision::Skip {
        return Ok(None);
    }
    let st = match early {
        Some(st) => st,
        None => stat(name)?,
    };
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => EntryKind::Dir,
        FileType::RegularFile => EntryKind::File,
        FileType::Symlink => EntryKind::Symlink,
        _ => return Ok(None),
    };
    if (kind == EntryKind::Dir) != (ft == FileType::Directory) && ft != FileType::Unknown {
        // Replaced between reading the directory and stat'ing it: decide on what it is now.
        decision = decide(kind == EntryKind::Dir);
        if decision == Decision::Skip {
            return Ok(None);
        }
    }
    let link = if kind == EntryKind::Symlink {
        let target =
            rustix::fs::readlinkat(dir, name, Vec::new()).map_err(|e| ContextError::Io {
                path: root.join(&rel),
                source: e.into(),
            })?;
        let target = target.into_string().map_err(|_| ContextError::NonUtf8 {
            path: root.join(&rel),
        })?;
        Some(target.into_boxed_str())
    } else {
        None
    };
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let meta = Meta {
        size: u64::try_from(st.st_size).unwrap_or(0),
        ino: st.st_ino as u64,
        mtime_ns: nanos(st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime_ns: nanos(st.st_ctime as i64, st.st_ctime_nsec as i64),
        uid: st.st_uid,
        gid: st.st_gid,
        dev: 0,
        mode: (st.st_mode & 0o7777) as u16,
        kind,
    };
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let dev = st.st_dev as u64;
    Ok(Some(Listed {
        rel,
        meta,
        dev,
        link,
        decision,
    }))
}

/// Seconds and nanoseconds as nanoseconds since the epoch, saturating.
fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}
