//! The compact in-memory form of a walked context: one path arena plus fixed-size records.
//!
//! A million-entry context must fit in well under 100 MB, so an entry is not a
//! [`ContextEntry`] (two heap strings, a `PathBuf`, an optional target: ~170 bytes) but
//! - its relative path, a slice of one shared `arena` string ending at `ends[i]`;
//! - a 40-byte `Packed` record (kind, mode, size and the stat data the stat cache compares,
//!   plus an index into the few distinct (uid, gid, device) triples of the context);
//! - for symlinks only, its target in a side list sorted by position.
//!
//! The host path is derived on demand (`root` + `rel`) and a [`ContextEntry`] is materialised
//! only where the public API hands one out ([`Table::entry`]).
//!
//! Invariants: `ends` and `meta` have one element per entry; `ends` is non-decreasing and its
//! last element is `arena.len()`; `links` is sorted by position and names only symlinks;
//! `packed[i].owner` indexes `owners`, which holds each triple once. Entries are pushed in walk order, so [`Table::position`] can
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
/// into the table's `owners` (40 bytes instead of 48 plus a device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    size: u64,
    ino: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    owner: u32,
    mode: u16,
    kind: EntryKind,
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
        self.packed.push(Packed {
            size: meta.size,
            ino: meta.ino,
            mtime_ns: meta.mtime_ns,
            ctime_ns: meta.ctime_ns,
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
    }

    /// Gives back spare capacity (the walk grows the vectors by doubling).
    pub fn shrink_to_fit(&mut self) {
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.packed.shrink_to_fit();
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

    /// The description of entry `i`.
    pub fn meta(&self, i: usize) -> Meta {
        let p = &self.packed[i];
        let (uid, gid, _) = self.owner_of(i);
        Meta {
            size: p.size,
            ino: p.ino,
            mtime_ns: p.mtime_ns,
            ctime_ns: p.ctime_ns,
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
        StatKey {
            dev: self.owner_of(i).2,
            ino: m.ino,
            size: m.size,
            mtime_ns: m.mtime_ns,
            ctime_ns: m.ctime_ns,
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
            host_path: root.join(rel),
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
    fn push_lookup_truncate() {
        let mut t = Table::default();
        t.push("a", meta(EntryKind::Dir, 1), 7, None).expect("push");
        t.push("a/l", meta(EntryKind::Symlink, 2), 8, Some("x".into()))
            .expect("push");
        t.push("b", meta(EntryKind::File, 3), 7, None)
            .expect("push");
        assert_eq!(std::mem::size_of::<Packed>(), 40);
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
