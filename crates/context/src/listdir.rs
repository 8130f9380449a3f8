//! Reading one directory of a context: its children decided by the filter and described.
//!
//! The directory is opened once (by its full path, so no descriptor is held per level) and
//! read with `getdents64`; each child is decided first (its kind comes from the directory
//! entry, so a skipped child costs no system call) and then described with `fstatat`
//! relative to the directory descriptor (never following a symlink, no path lookup per file)
//! and `readlinkat` for symlinks. Decisions reuse the parent directory's pattern hits
//! ([`DirState`]); below a directory that no pattern can touch nothing is matched at all.
//!
//! A listing keeps its children's relative paths in one string (no allocation per child):
//! re-verifying an unchanged context is mostly this loop, so it must cost little more than
//! the system calls themselves.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use rayon::prelude::*;
use rbuild_types::bytes::{escape, unescape};

use crate::entry::{host_path, EntryKind};
use crate::error::ContextError;
use crate::filter::{Decision, DirState, Filter};
use crate::table::Meta;

/// Below this many names a directory's children are described on the calling thread.
const PARALLEL_MIN: usize = 512;

/// A child found in a directory, decided and described. Its relative path is
/// `text[start..end]` of the [`Listing`] holding it.
pub(crate) struct Listed {
    start: usize,
    end: usize,
    pub meta: Meta,
    pub dev: u64,
    pub link: Option<Box<str>>,
    pub decision: Decision,
}

/// The children of one directory. Invariants: every item's range lies in `text` on
/// character boundaries; items are sorted by relative path (byte-wise, which is walk order
/// among siblings).
#[derive(Default)]
pub(crate) struct Listing {
    text: String,
    items: Vec<Listed>,
}

impl Listing {
    /// Number of children.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The children, sorted.
    pub fn items(&self) -> &[Listed] {
        &self.items
    }

    /// Child `k` with its relative path (mutable, so its link target can be moved out).
    pub fn item_mut(&mut self, k: usize) -> Option<(&str, &mut Listed)> {
        let item = self.items.get_mut(k)?;
        Some((self.text.get(item.start..item.end).unwrap_or(""), item))
    }

    /// The relative path of `item` (one of this listing's).
    pub fn rel(&self, item: &Listed) -> &str {
        self.text.get(item.start..item.end).unwrap_or("")
    }
}

/// Reads directory `rel` (`""` for the root) and decides and describes each child. The
/// result is sorted by name; skipped and special children are left out.
pub(crate) fn list_dir(
    root: &Path,
    rel: &str,
    filter: &Filter,
    state: &DirState,
) -> Result<Listing, ContextError> {
    let path = if rel.is_empty() {
        root.to_path_buf()
    } else {
        host_path(root, rel)
    };
    let io = |e: nix::errno::Errno| ContextError::Io {
        path: path.clone(),
        source: e.into(),
    };
    // The root may be reached through a symlink; nothing below it is followed.
    let nofollow = if rel.is_empty() {
        OFlag::empty()
    } else {
        OFlag::O_NOFOLLOW
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | nofollow;
    // Reads through this descriptor (no reopen); `fstatat` below uses it too, which the
    // directory stream's position does not affect.
    let mut dir = Dir::open(&path, flags, Mode::empty()).map_err(io)?;
    // Each child's relative path is appended to `text`; `names` holds its range and type
    // (`None`: the filesystem does not say).
    let mut text = String::new();
    let mut names: Vec<(usize, usize, Option<Type>)> = Vec::new();
    for dent in dir.iter() {
        let dent = dent.map_err(io)?;
        let name = dent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        // A name that is not UTF-8 is kept in the escaped form (see `entry`).
        let name = escape(name);
        let start = text.len();
        if !rel.is_empty() {
            text.push_str(rel);
            text.push('/');
        }
        text.push_str(&name);
        names.push((start, text.len(), dent.file_type()));
    }
    let fd = dir.as_raw_fd();
    let text_ref = &text;
    let describe = |(start, end, ft): (usize, usize, Option<Type>)| {
        let child = text_ref.get(start..end).unwrap_or("");
        describe_child(root, fd, child, ft, filter, state).map(|described| {
            described.map(|(meta, dev, link, decision)| Listed {
                start,
                end,
                meta,
                dev,
                link,
                decision,
            })
        })
    };
    let mut items: Vec<Listed> = if names.len() >= PARALLEL_MIN {
        let described: Vec<Option<Listed>> = names
            .into_par_iter()
            .map(describe)
            .collect::<Result<_, _>>()?;
        described.into_iter().flatten().collect()
    } else {
        let mut items = Vec::with_capacity(names.len());
        for name in names {
            items.extend(describe(name)?);
        }
        items
    };
    items.sort_unstable_by(|a, b| text[a.start..a.end].cmp(&text[b.start..b.end]));
    Ok(Listing { text, items })
}

/// What [`describe_child`] finds out about a kept child: its description, device, symlink
/// target and the filter's decision.
type Described = (Meta, u64, Option<Box<str>>, Decision);

/// The kind of file a `st_mode` says.
fn kind_of(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// Decides one child and, unless skipped, describes it from `fstatat` on its directory
/// `dir` (open while the listing runs).
fn describe_child(
    root: &Path,
    dir: RawFd,
    rel: &str,
    ft: Option<Type>,
    filter: &Filter,
    state: &DirState,
) -> Result<Option<Described>, ContextError> {
    let escaped_name = rel.rsplit('/').next().unwrap_or(rel);
    let raw_name = unescape(escaped_name);
    let name = OsStr::from_bytes(&raw_name);
    let stat = |name: &OsStr| {
        nix::sys::stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| {
            ContextError::Io {
                path: host_path(root, rel),
                source: e.into(),
            }
        })
    };
    let decide = |is_dir: bool| {
        if state.keeps_all() {
            Decision::Keep
        } else {
            filter.decide_in(state, rel, is_dir)
        }
    };
    let (mut decision, early) = match ft {
        Some(Type::Directory) => (decide(true), None),
        Some(Type::File | Type::Symlink) => (decide(false), None),
        None => {
            let st = stat(name)?;
            let is_dir = kind_of(&st) == SFlag::S_IFDIR;
            (decide(is_dir), Some(st))
        }
        Some(_) => return Ok(None),
    };
    if decision == Decision::Skip {
        return Ok(None);
    }
    let st = match early {
        Some(st) => st,
        None => stat(name)?,
    };
    let kind = match kind_of(&st) {
        SFlag::S_IFDIR => EntryKind::Dir,
        SFlag::S_IFREG => EntryKind::File,
        SFlag::S_IFLNK => EntryKind::Symlink,
        _ => return Ok(None),
    };
    if (kind == EntryKind::Dir) != (ft == Some(Type::Directory)) && ft.is_some() {
        // Replaced between reading the directory and stat'ing it: decide on what it is now.
        decision = decide(kind == EntryKind::Dir);
        if decision == Decision::Skip {
            return Ok(None);
        }
    }
    let link = if kind == EntryKind::Symlink {
        let target = nix::fcntl::readlinkat(Some(dir), name).map_err(|e| ContextError::Io {
            path: host_path(root, rel),
            source: e.into(),
        })?;
        Some(escape(target.as_bytes()).into())
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
        mode: (st.st_mode & 0o7777) as u16,
        kind,
    };
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let dev = st.st_dev as u64;
    Ok(Some((meta, dev, link, decision)))
}

/// Seconds and nanoseconds as nanoseconds since the epoch, saturating.
fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}
