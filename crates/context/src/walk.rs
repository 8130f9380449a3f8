//! The filtered walk of a context directory, straight into the compact [`Table`].
//!
//! Depth-first and in walk order on the calling thread, which appends each entry to the
//! table as it reaches it; worker threads (one per core) read directories ahead of it
//! (see `ahead`: bounded, nearest directory first), each directory read and its children
//! decided and stat'ed as `listdir` describes. An excluded directory that no `!` exception
//! can reopen is never opened; a skipped file is never stat'ed. Nothing but the table and a
//! bounded number of directory listings is held, so memory follows the included entries.
//!
//! Files that are neither regular files, directories nor symlinks (sockets, FIFOs, devices)
//! are skipped, as they cannot be copied into an image meaningfully. A `Descend` directory
//! (excluded, but an exception could re-include something below) is listed only if something
//! below it is.
//!
//! Invariant of the result: in walk order (pre-order, a directory before its contents,
//! siblings by byte-wise name, so `foo/x` sorts before `foo2`), relative `/`-separated paths.

use std::path::Path;

use crate::ahead::{Listing, ReadAhead};
use crate::entry::{ContextEntry, EntryKind};
use crate::error::ContextError;
use crate::filter::{Decision, Filter};
use crate::table::{Table, TableFull};

/// Stat data used for the persistent stat cache and change detection. Times are nanoseconds
/// since the epoch in an `i64` (enough until 2262).
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
    let table = walk_table(root, filter)?;
    Ok((0..table.len())
        .map(|i| Walked {
            entry: table.entry(root, i),
            stat: table.stat_key(i),
        })
        .collect())
}

/// One directory being traversed: its children (sorted) and where the traversal stands.
struct Frame {
    items: Listing,
    next: usize,
    /// The table position of this directory when it was only `Descend`ed: it is dropped
    /// again if nothing below it was listed.
    descend_at: Option<usize>,
}

/// Walks `root` through `filter` into a [`Table`] in walk order.
pub(crate) fn walk_table(root: &Path, filter: &Filter) -> Result<Table, ContextError> {
    let ahead = ReadAhead::new(root, filter, filter.root_state());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| ahead.work());
        }
        let result = depth_first(root, &ahead);
        ahead.stop();
        result
    })
}

/// The traversal proper (see the module docs).
fn depth_first(root: &Path, ahead: &ReadAhead<'_>) -> Result<Table, ContextError> {
    let mut table = Table::default();
    let mut stack = vec![Frame {
        items: ahead.take("")?,
        next: 0,
        descend_at: None,
    }];
    while let Some(frame) = stack.last_mut() {
        let Some((rel, item)) = frame.items.item_mut(frame.next) else {
            if let Some(done) = stack.pop() {
                if done.descend_at.is_some_and(|at| at + 1 == table.len()) {
                    table.truncate(table.len() - 1);
                }
            }
            continue;
        };
        frame.next += 1;
        let at = table.len();
        table
            .push(rel, item.meta, item.dev, item.link.take())
            .map_err(|full| too_large(root, full))?;
        if item.meta.kind != EntryKind::Dir {
            continue;
        }
        let descend_at = (item.decision == Decision::Descend).then_some(at);
        let items = ahead.take(rel)?;
        stack.push(Frame {
            items,
            next: 0,
            descend_at,
        });
    }
    table.shrink_to_fit();
    Ok(table)
}

fn too_large(root: &Path, full: TableFull) -> ContextError {
    ContextError::TooLarge {
        root: root.to_path_buf(),
        detail: match full {
            TableFull::PathText => "its included paths add up to more than 4 GiB of text",
            TableFull::Devices => "it spans more than 2^32 devices",
        },
    }
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
