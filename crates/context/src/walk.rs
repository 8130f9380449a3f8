//! The parallel, filtered walk of a context directory.
//!
//! Uses `ignore`'s parallel walker with all of its own filtering (gitignore, hidden files,
//! `.ignore`) turned off; our [`Filter`] decides what is listed and prunes directories nothing
//! below which can be listed. Symlinks are never followed. Files that are neither regular
//! files, directories nor symlinks (sockets, FIFOs, devices) are skipped, as they cannot be
//! copied into an image meaningfully.
//!
//! Invariant of the result: sorted in walk order (pre-order, a directory before its contents,
//! siblings by byte-wise name, so `foo/x` sorts before `foo2`), relative `/`-separated paths.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ignore::{WalkBuilder, WalkState};
use rayon::slice::ParallelSliceMut;

use crate::entry::{ContextEntry, EntryKind};
use crate::error::ContextError;
use crate::filter::{Decision, Filter};

/// Stat data used for the persistent stat cache and change detection. Times are nanoseconds
/// since the epoch in an `i64` (enough until 2262), keeping the key at 40 bytes: a
/// million-entry context holds a million of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StatKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// One listed path with its stat key.
#[derive(Debug, Clone)]
pub struct Walked {
    pub entry: ContextEntry,
    pub stat: StatKey,
}

/// Walks `root` through `filter`; returns the listed entries in walk order.
pub fn walk(root: &Path, filter: &Filter) -> Result<Vec<Walked>, ContextError> {
    let found: Mutex<Vec<(Walked, Decision)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<ContextError>> = Mutex::new(None);
    let fail = |e: ContextError| {
        if let Ok(mut slot) = failure.lock() {
            slot.get_or_insert(e);
        }
        WalkState::Quit
    };
    WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .build_parallel()
        .run(|| {
            Box::new(|result| {
                let dent = match result {
                    Ok(d) => d,
                    Err(source) => {
                        return fail(ContextError::Walk {
                            root: root.to_path_buf(),
                            source,
                        })
                    }
                };
                if dent.depth() == 0 {
                    return WalkState::Continue;
                }
                let walked = match describe(root, dent.path()) {
                    Ok(Some(w)) => w,
                    Ok(None) => return WalkState::Continue,
                    Err(e) => return fail(e),
                };
                let is_dir = walked.entry.kind == EntryKind::Dir;
                let decision = filter.decide(&walked.entry.rel, is_dir);
                if decision == Decision::Skip {
                    return if is_dir {
                        WalkState::Skip
                    } else {
                        WalkState::Continue
                    };
                }
                if let Ok(mut list) = found.lock() {
                    list.push((walked, decision));
                }
                WalkState::Continue
            })
        });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut list = found.into_inner().unwrap_or_default();
    list.par_sort_unstable_by(|a, b| walk_order(&a.0.entry.rel, &b.0.entry.rel));
    Ok(drop_empty_descend_dirs(list))
}

/// Compares two relative paths in walk order (segment by segment, byte-wise).
///
/// Segment-wise order equals byte-wise order with `/` ranked below every other byte (segments
/// never contain `/`), which is computed here without splitting: after the common prefix, a
/// `/` in one path means its segment ended first.
pub fn walk_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let rank = |s: &[u8]| {
        s.get(common)
            .map(|&c| if c == b'/' { 0 } else { u16::from(c) + 1 })
    };
    rank(a).cmp(&rank(b))
}

/// Keeps a `Descend` directory only when the next listed entry lies below it. In place: a
/// million-entry context must not hold two copies of its list.
fn drop_empty_descend_dirs(list: Vec<(Walked, Decision)>) -> Vec<Walked> {
    let mut keep = vec![false; list.len()];
    let mut next_kept: Option<usize> = None;
    for i in (0..list.len()).rev() {
        let (walked, decision) = &list[i];
        let k = *decision == Decision::Keep
            || next_kept.is_some_and(|n| {
                list[n]
                    .0
                    .entry
                    .rel
                    .strip_prefix(walked.entry.rel.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
            });
        if k {
            keep[i] = true;
            next_kept = Some(i);
        }
    }
    let mut flags = keep.into_iter();
    let mut out = list;
    out.retain(|_| flags.next().unwrap_or(false));
    out.into_iter().map(|(w, _)| w).collect()
}

/// Reads the metadata of `path` (never following a symlink); `None` for special files.
pub fn describe(root: &Path, path: &Path) -> Result<Option<Walked>, ContextError> {
    let meta = std::fs::symlink_metadata(path).map_err(ContextError::io(path))?;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        return Ok(None);
    };
    let rel_path = path.strip_prefix(root).unwrap_or(path);
    let rel = rel_path
        .to_str()
        .ok_or_else(|| ContextError::NonUtf8 {
            path: path.to_path_buf(),
        })?
        .to_string();
    let link_target = if kind == EntryKind::Symlink {
        let target = std::fs::read_link(path).map_err(ContextError::io(path))?;
        Some(
            target
                .to_str()
                .ok_or_else(|| ContextError::NonUtf8 {
                    path: path.to_path_buf(),
                })?
                .to_string(),
        )
    } else {
        None
    };
    let stat = StatKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        ctime_ns: meta
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec()),
    };
    Ok(Some(Walked {
        entry: ContextEntry {
            rel,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: if kind == EntryKind::File {
                meta.size()
            } else {
                0
            },
            link_target,
            host_path: PathBuf::from(path),
        },
        stat,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn order_is_segmentwise() {
        assert_eq!(walk_order("foo/x", "foo2"), Ordering::Less);
        assert_eq!(walk_order("a/b", "a-b"), Ordering::Less);
        assert_eq!(walk_order("a", "a/b"), Ordering::Less);
        assert_eq!(walk_order("a/b", "a"), Ordering::Greater);
        assert_eq!(walk_order("a/b", "a/b"), Ordering::Equal);
        assert_eq!(walk_order("a.b/c", "a/b"), Ordering::Greater);
        // Against the definition, on a mixed set.
        let paths = [
            "a", "a/b", "a-b", "a/b/c", "a.b", "a/c", "ab", "b", "a/b-c", "a/b/d",
        ];
        for x in paths {
            for y in paths {
                assert_eq!(
                    walk_order(x, y),
                    x.split('/').cmp(y.split('/')),
                    "{x} vs {y}"
                );
            }
        }
    }
}
