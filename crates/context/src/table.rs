//! The compact in-memory form of a walked context: one path arena plus fixed-size records.
//!
//! A million-entry context must fit in well under 100 MB, so an entry is not a
//! [`ContextEntry`] (two heap strings, a `PathBuf`, an optional target: ~170 bytes) but
//! - its relative path, a slice of one shared `arena` string ending at `ends[i]`;
//! - a 32-byte `Packed` record (kind, mode, size and the stat data the stat cache compares,
//!   plus an index into the few distinct (uid, gid, device) triples of the context); the
//!   size is held in 32 bits and the ctime as a 32-bit nanosecond offset from the mtime,
//!   and an entry whose values do not fit (a file of 4 GiB or more, a ctime more than ≈ 2 s
//!   away from the mtime) keeps them exactly in the `wide` side list instead;
//! - for symlinks only, its target in a side list sorted by position.
//!
//! The host path is derived on demand (`root` + `rel`) and a [`ContextEntry`] is materialised
//! only where the public API hands one out ([`Table::entry`]).
//!
//! Invariants: `ends` and `packed` have one element per entry; `ends` is non-decreasing and
//! its last element is `arena.len()`; `links` is sorted by position and names only symlinks;
//! `wide` is sorted by position and names exactly the entries whose `size` is [`WIDE_SIZE`]
//! or whose `ctime_delta` is [`WIDE_DELTA`]; `packed[i].owner` indexes `owners`, which holds
//! each triple once. Entries are pushed in walk order, so [`Table::position`] can
//! binary-search.

use std::collections::HashMap;
use std::path::Path;

use crate::entry::{ContextEntry, EntryKind};
use crate::walk::{walk_order, StatKey};

/// The fixed-size description of an entry (its device is given beside it). `mode` holds
/// `& 0o7777`; `size` is the file size (0 for directories and symlinks in the materialised
/// entry, but the real `st_size` here, as the stat cache compares it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub size: u64,
    pub ino: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    pub kind: EntryKind,
}

/// What the table stores per entry: [`Meta`] with uid, gid and device replaced by an index
/// into the table's `owners`, the size narrowed and the ctime stored as an offset from the
/// mtime (32 bytes instead of 48 plus a device; see the module docs for what does not fit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    ino: u64,
    mtime_ns: i64,
    /// The size, or [`WIDE_SIZE`]: look in `wide`.
    size: u32,
    /// `ctime_ns - mtime_ns`, or [`WIDE_DELTA`]: look in `wide`.
    ctime_delta: i32,
    owner: u32,
    mode: u16,
    kind: EntryKind,
}

/// `Packed::size` of an entry whose size is in `wide`.
const WIDE_SIZE: u32 = u32::MAX;
/// `Packed::ctime_delta` of an entry whose ctime is in `wide`.
const WIDE_DELTA: i32 = i32::MIN;

/// The exact size and ctime of an entry that does not fit in [`Packed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wide {
    pos: u32,
    size: u64,
    ctime_ns: i64,
}

/// Why an entry cannot be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableFull {
    /// The relative paths together exceed 4 GiB.
    PathText,
    /// More than 2^32 distinct (uid, gid, device) triples.
    Devices,
}

/// A (uid, gid, device) triple.
type Owner = (u32, u32, u64);

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Table {
    arena: String,
    ends: Vec<u32>,
    packed: Vec<Packed>,
    wide: Vec<Wide>,
    links: Vec<(u32, Box<str>)>,
    owners: Vec<Owner>,
    /// Index of each triple in `owners` (used while pushing).
    owner_index: HashMap<Owner, u32>,
}

impl Table {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    /// The index of `owner` in `owners`, added if new.
    fn owner(&mut self, owner: Owner) -> Result<u32, TableFull> {
        // Consecutive entries nearly always share their owner.
        if let Some(last) = self.owners.len().checked_sub(1) {
            if self.owners[last] == owner {
                return u32::try_from(last).map_err(|_| TableFull::Devices);
            }
        }
        if let Some(&i) = self.owner_index.get(&owner) {
            return Ok(i);
        }
        let i = u32::try_from(self.owners.len()).map_err(|_| TableFull::Devices)?;
        self.owners.push(owner);
        self.owner_index.insert(owner, i);
        Ok(i)
    }

    /// Appends an entry described by `meta`, on device `dev`.
    pub fn push(
        &mut self,
        rel: &str,
        meta: Meta,
        dev: u64,
        link: Option<Box<str>>,
    ) -> Result<(), TableFull> {
        let end = self
            .arena
            .len()
            .checked_add(rel.len())
            .and_then(|e| u32::try_from(e).ok())
            .ok_or(TableFull::PathText)?;
        let pos = u32::try_from(self.packed.len()).map_err(|_| TableFull::PathText)?;
        let owner = self.owner((meta.uid, meta.gid, dev))?;
        self.arena.push_str(rel);
        self.ends.push(end);
        let size = u32::try_from(meta.size).ok().filter(|&s| s != WIDE_SIZE);
        let delta = meta
            .ctime_ns
            .checked_sub(meta.mtime_ns)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|&d| d != WIDE_DELTA);
        if size.is_none() || delta.is_none() {
            self.wide.push(Wide {
                pos,
                size: meta.size,
                ctime_ns: meta.ctime_ns,
            });
        }
        self.packed.push(Packed {
            ino: meta.ino,
            mtime_ns: meta.mtime_ns,
            size: size.unwrap_or(WIDE_SIZE),
            ctime_delta: delta.unwrap_or(WIDE_DELTA),
            owner,
            mode: meta.mode,
            kind: meta.kind,
        });
        if let Some(target) = link {
            self.links.push((pos, target));
        }
        Ok(())
    }

    /// Drops every entry from position `len` on.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len() {
            return;
        }
        let start = self.start(len);
        self.arena.truncate(start);
        self.ends.truncate(len);
        self.packed.truncate(len);
        let keep = self.links.partition_point(|(p, _)| (*p as usize) < len);
        self.links.truncate(keep);
        let keep = self.wide.partition_point(|w| (w.pos as usize) < len);
        self.wide.truncate(keep);
    }

    /// Gives back spare capacity (the walk grows the vectors by doubling).
    pub fn shrink_to_fit(&mut self) {
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.packed.shrink_to_fit();
        self.wide.shrink_to_fit();
        self.links.shrink_to_fit();
        // Only `push` needs the index.
        self.owner_index = HashMap::new();
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize
        }
    }

    /// The relative path of entry `i`.
    pub fn rel(&self, i: usize) -> &str {
        self.arena
            .get(self.start(i)..self.ends[i] as usize)
            .unwrap_or("")
    }

    /// The (uid, gid, device) of entry `i`.
    fn owner_of(&self, i: usize) -> Owner {
        self.owners
            .get(self.packed[i].owner as usize)
            .copied()
            .unwrap_or_default()
    }

    /// The exact (size, ctime) of entry `i`.
    fn size_ctime(&self, i: usize) -> (u64, i64) {
        let p = &self.packed[i];
        if p.size != WIDE_SIZE && p.ctime_delta != WIDE_DELTA {
            return (
                u64::from(p.size),
                p.mtime_ns.saturating_add(i64::from(p.ctime_delta)),
            );
        }
        let wide = u32::try_from(i)
            .ok()
            .and_then(|pos| self.wide.binary_search_by_key(&pos, |w| w.pos).ok())
            .map(|k| self.wide[k]);
        match wide {
            Some(w) => (w.size, w.ctime_ns),
            // Unreachable by the invariants; a wrong stat key only means a re-hash.
            None => (u64::MAX, i64::MIN),
        }
    }

    /// The description of entry `i`.
    pub fn meta(&self, i: usize) -> Meta {
        let p = &self.packed[i];
        let (uid, gid, _) = self.owner_of(i);
        let (size, ctime_ns) = self.size_ctime(i);
        Meta {
            size,
            ino: p.ino,
            mtime_ns: p.mtime_ns,
            ctime_ns,
            uid,
            gid,
            mode: p.mode,
            kind: p.kind,
        }
    }

    /// The kind of entry `i`.
    pub fn kind(&self, i: usize) -> EntryKind {
        self.packed[i].kind
    }

    /// The symlink target of entry `i` (`None` unless it is a symlink).
    pub fn link(&self, i: usize) -> Option<&str> {
        if self.packed[i].kind != EntryKind::Symlink {
            return None;
        }
        let pos = u32::try_from(i).ok()?;
        self.links
            .binary_search_by_key(&pos, |(p, _)| *p)
            .ok()
            .map(|k| &*self.links[k].1)
    }

    /// The stat data of entry `i`, as the stat cache compares it.
    pub fn stat_key(&self, i: usize) -> StatKey {
        let m = &self.packed[i];
        let (size, ctime_ns) = self.size_ctime(i);
        StatKey {
            dev: self.owner_of(i).2,
            ino: m.ino,
            size,
            mtime_ns: m.mtime_ns,
            ctime_ns,
        }
    }

    /// The position of the entry whose path is `rel`, if listed.
    pub fn position(&self, rel: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match walk_order(self.rel(mid), rel) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Entry `i` as the public type, its host path being `root` joined with its path.
    pub fn entry(&self, root: &Path, i: usize) -> ContextEntry {
        let m = self.meta(i);
        let rel = self.rel(i);
        ContextEntry {
            rel: rel.to_string(),
            kind: m.kind,
            mode: u32::from(m.mode),
            uid: m.uid,
            gid: m.gid,
            size: if m.kind == EntryKind::File { m.size } else { 0 },
            link_target: self.link(i).map(str::to_string),
            host_path: crate::entry::host_path(root, rel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: EntryKind, ino: u64) -> Meta {
        Meta {
            size: 1,
            ino,
            mtime_ns: 2,
            ctime_ns: 3,
            uid: 4,
            gid: 5,
            mode: 0o644,
            kind,
        }
    }

    #[test]
    fn values_that_do_not_fit_are_kept_exactly() {
        let mut t = Table::default();
        let cases = [
            (1u64, 10i64, 10i64),
            (u64::from(u32::MAX), 10, 10),
            (u64::from(u32::MAX) - 1, -5, 7),
            (5 << 32, 0, 0),
            (3, 0, i64::from(i32::MAX)),
            (3, 0, i64::from(i32::MAX) + 1),
            (3, 0, i64::from(i32::MIN)),
            (3, 0, i64::from(i32::MIN) + 1),
            (3, i64::MAX, i64::MIN),
            (4, i64::MIN, i64::MAX),
        ];
        for (k, &(size, mtime_ns, ctime_ns)) in cases.iter().enumerate() {
            let mut m = meta(EntryKind::File, k as u64);
            (m.size, m.mtime_ns, m.ctime_ns) = (size, mtime_ns, ctime_ns);
            t.push(&format!("f{k:02}"), m, 1, None).expect("push");
        }
        for (k, &(size, mtime_ns, ctime_ns)) in cases.iter().enumerate() {
            let s = t.stat_key(k);
            assert_eq!(
                (s.size, s.mtime_ns, s.ctime_ns),
                (size, mtime_ns, ctime_ns),
                "{k}"
            );
            assert_eq!(t.meta(k).size, size, "{k}");
        }
        assert_eq!(t.wide.len(), 6, "cases 1, 3, 5, 6, 8 and 9 do not fit");
        t.truncate(3);
        assert_eq!(t.wide.len(), 1);
        assert_eq!(t.stat_key(2).ctime_ns, 7);
    }

    #[test]
    fn push_lookup_truncate() {
        let mut t = Table::default();
        t.push("a", meta(EntryKind::Dir, 1), 7, None).expect("push");
        t.push("a/l", meta(EntryKind::Symlink, 2), 8, Some("x".into()))
            .expect("push");
        t.push("b", meta(EntryKind::File, 3), 7, None)
            .expect("push");
        assert_eq!(std::mem::size_of::<Packed>(), 32);
        assert_eq!(t.rel(1), "a/l");
        assert_eq!(t.link(1), Some("x"));
        assert_eq!(t.link(2), None);
        assert_eq!(t.position("b"), Some(2));
        assert_eq!(t.position("a/m"), None);
        assert_eq!(t.stat_key(1).dev, 8);
        assert_eq!(t.stat_key(2).dev, 7);
        assert_eq!(t.owners.len(), 2, "one entry per distinct (uid, gid, dev)");
        assert_eq!((t.meta(1).uid, t.meta(1).gid), (4, 5));
        let e = t.entry(Path::new("/r"), 1);
        assert_eq!(e.host_path, Path::new("/r/a/l"));
        assert_eq!((e.size, e.link_target.as_deref()), (0, Some("x")));
        t.truncate(1);
        assert_eq!((t.len(), t.rel(0), t.position("a/l")), (1, "a", None));
        assert!(t.links.is_empty());
    }
}
