//! The persistent stat cache: file content digests remembered by (dev, inode, size, mtime,
//! ctime), so an unchanged context is re-verified without reading any file.
//!
//! Keyed by inode, not by path: a content digest depends only on the content, and the stat
//! data identify a version of an inode's content; no per-path string is stored or compared.
//!
//! Racy-timestamp rule (as git's index): a remembered digest is trusted only if the file's
//! mtime and ctime are strictly older than the cache file's own mtime. A file changed within
//! the same filesystem timestamp tick as the cache was written could keep its stat data while
//! its content changed, so such records are re-hashed (and not carried over on save).
//!
//! Records of files hashed in this build are gathered by `stat_fresh` (spilled to unnamed
//! temporary files in sorted runs past 32Ki records) and merged with the loaded records at
//! save; neither side is ever held whole in memory for a big cache.
//!
//! File format, read in one go and searched in place (nothing is parsed into a map): the
//! magic `RBSTATC2`, a little-endian `u64` record count, then fixed 72-byte records sorted by
//! (`dev`, `ino`) strictly increasing: `dev`, `ino`, `size` (`u64`), `mtime_ns`, `ctime_ns`
//! (`i64`) and the 32-byte content digest. It is written to a temporary file, fsynced and
//! renamed into place (crash-safe: a reader sees the old or the new file). A missing,
//! unreadable, truncated, unsorted or otherwise corrupt cache file is treated as empty.

use std::io::{Read, Write as _};
use std::os::unix::fs::{FileExt as _, MetadataExt};
use std::path::{Path, PathBuf};

use rbuild_types::Digest;

use crate::error::ContextError;
use crate::stat_fresh::{Fresh, Merged, Record};
use crate::walk::StatKey;

/// Magic and format version; a file starting otherwise is ignored.
const MAGIC: &[u8; 8] = b"RBSTATC2";
/// Header: magic + record count.
const HEADER: usize = 16;
/// One record: five 8-byte fields and a digest.
pub(crate) const RECORD: usize = 5 * 8 + 32;

/// A cache file of at most this many bytes is held in memory whole; a bigger one is searched
/// on disk through a sparse index ([`Loaded::Disk`]), so memory does not grow with it.
const IN_MEMORY_MAX: u64 = 8 << 20;
/// Records per block of a cache file searched on disk: one `pread` per lookup.
const BLOCK: usize = 32;

/// The loaded records. Invariant: both forms hold a well-formed file's records (strictly
/// increasing by (dev, ino)).
#[derive(Debug)]
enum Loaded {
    /// The whole file (header included; empty when nothing was loaded).
    Memory(Vec<u8>),
    /// The open file, its record count, and the (dev, ino) of every [`BLOCK`]-th record.
    Disk {
        file: std::fs::File,
        count: usize,
        firsts: Vec<(u64, u64)>,
    },
}

/// A loaded stat cache. Invariants: `loaded` is empty or a well-formed file's records;
/// `trusted_before_ns` is the cache file's mtime when loaded (`i64::MIN` when nothing was
/// loaded); `fresh` holds the records of files hashed since.
#[derive(Debug)]
pub struct StatCache {
    path: PathBuf,
    loaded: Loaded,
    trusted_before_ns: i64,
    fresh: Fresh,
}

impl StatCache {
    /// Loads the cache at `path`; absent, unreadable or corrupt means empty. A file over
    /// [`IN_MEMORY_MAX`] is validated by streaming it and then searched on disk.
    pub fn load(path: &Path) -> StatCache {
        let mut cache = StatCache {
            path: path.to_path_buf(),
            loaded: Loaded::Memory(Vec::new()),
            trusted_before_ns: i64::MIN,
            fresh: Fresh::new(&parent_dir(path)),
        };
        let Ok(meta) = std::fs::metadata(path) else {
            return cache;
        };
        let loaded = if meta.len() > IN_MEMORY_MAX {
            std::fs::File::open(path).ok().and_then(index_file)
        } else {
            std::fs::read(path)
                .ok()
                .filter(|b| well_formed(b))
                .map(Loaded::Memory)
        };
        if let Some(loaded) = loaded {
            cache.trusted_before_ns = meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec());
            cache.loaded = loaded;
        }
        cache
    }

    fn count(&self) -> usize {
        match &self.loaded {
            Loaded::Memory(bytes) => bytes.len().saturating_sub(HEADER) / RECORD,
            Loaded::Disk { count, .. } => *count,
        }
    }

    /// The loaded record for (dev, ino), if any.
    fn find(&self, dev: u64, ino: u64) -> Option<(StatKey, Digest)> {
        let want = (dev, ino);
        match &self.loaded {
            Loaded::Memory(bytes) => {
                let record = |k: usize| &bytes[HEADER + k * RECORD..HEADER + (k + 1) * RECORD];
                let (mut lo, mut hi) = (0, self.count());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match record_key(record(mid)).cmp(&want) {
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                        std::cmp::Ordering::Equal => return Some(decode_record(record(mid))),
                    }
                }
                None
            }
            Loaded::Disk {
                file,
                count,
                firsts,
            } => {
                let block = firsts.partition_point(|k| *k <= want).checked_sub(1)?;
                let start = block * BLOCK;
                let n = BLOCK.min(count - start);
                let mut buf = [0u8; BLOCK * RECORD];
                let buf = &mut buf[..n * RECORD];
                file.read_exact_at(buf, (HEADER + start * RECORD) as u64)
                    .ok()?;
                buf.chunks_exact(RECORD)
                    .find(|r| record_key(r) == want)
                    .map(decode_record)
            }
        }
    }

    /// The remembered content digest for a file with stat data `stat`, if unchanged and not
    /// racy.
    pub fn lookup(&self, stat: &StatKey) -> Option<Digest> {
        let (key, content) = self.find(stat.dev, stat.ino)?;
        self.trusted(&key, stat).then_some(content)
    }

    /// Whether a loaded record `key` may be used for a file now at `stat`: the same stat data
    /// and timestamps older than the cache file (the racy-timestamp rule).
    fn trusted(&self, key: &StatKey, stat: &StatKey) -> bool {
        let racy = key.mtime_ns >= self.trusted_before_ns || key.ctime_ns >= self.trusted_before_ns;
        key == stat && !racy
    }

    /// Remembers the content digest of a file hashed as of `stat` (kept for [`save`]).
    ///
    /// [`save`]: StatCache::save
    pub fn remember(&self, stat: StatKey, content: Digest) {
        self.fresh.push(stat, content);
    }

    /// The loaded records in order, read sequentially (for the streamed save).
    fn loaded_cursor(&self) -> Cursor<'_> {
        let source = match &self.loaded {
            Loaded::Memory(bytes) => Source::Memory(bytes.get(HEADER..).unwrap_or(&[])),
            Loaded::Disk { file, .. } => Source::Disk(std::io::BufReader::with_capacity(
                1 << 16,
                AtReader {
                    file,
                    pos: HEADER as u64,
                },
            )),
        };
        Cursor {
            source,
            left: self.count(),
            head: None,
        }
    }

    /// Writes the cache for the files now in the context: every record hashed since loading
    /// plus every loaded record still trusted for one of them. `files` gives their stat data
    /// sorted by (dev, ino) (hard links repeat a key), each call from the start. Records of
    /// files that disappeared or changed are dropped. Nothing is written when the result
    /// equals the loaded file. Streamed (memory does not grow with the number of records):
    /// a three-way merge in (dev, ino) order of `files`, the fresh records (spilled runs and
    /// buffer) and the loaded records read sequentially; temporary file, fsync, rename.
    pub fn save<I: Iterator<Item = StatKey>>(
        &self,
        files: impl Fn() -> I,
    ) -> Result<(), ContextError> {
        let read_err = |source: std::io::Error| ContextError::Io {
            path: self.path.clone(),
            source,
        };
        if self.fresh.is_empty() {
            let mut loaded = self.loaded_cursor();
            let mut carried = 0usize;
            let mut last = None;
            for stat in files() {
                if last == Some((stat.dev, stat.ino)) {
                    continue;
                }
                last = Some((stat.dev, stat.ino));
                if let Some((key, _)) = loaded.seek((stat.dev, stat.ino)).map_err(read_err)? {
                    carried += usize::from(self.trusted(&key, &stat));
                }
            }
            if carried == self.count() {
                return Ok(());
            }
        }
        let dir = parent_dir(&self.path);
        std::fs::create_dir_all(&dir).map_err(ContextError::io(&dir))?;
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(ContextError::io(&dir))?;
        let io = |e| ContextError::Io {
            path: tmp.path().to_path_buf(),
            source: e,
        };
        let mut out = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file());
        out.write_all(MAGIC).map_err(io)?;
        out.write_all(&0u64.to_le_bytes()).map_err(io)?;
        let mut written = 0u64;
        let mut record = Vec::with_capacity(RECORD);
        let mut emit = |out: &mut std::io::BufWriter<&std::fs::File>,
                        k: &StatKey,
                        d: &Digest|
         -> std::io::Result<()> {
            record.clear();
            encode_record(&mut record, k, d);
            written += 1;
            out.write_all(&record)
        };
        let mut pending = Pending::new(self.fresh.merged().map_err(read_err)?).map_err(read_err)?;
        let mut loaded = self.loaded_cursor();
        let mut last = None;
        for stat in files() {
            let key = (stat.dev, stat.ino);
            if last == Some(key) {
                continue;
            }
            last = Some(key);
            // Fresh records sort in first (those of files not listed are kept too).
            while let Some((k, d)) = pending.next_if(|k| k < key).map_err(read_err)? {
                emit(&mut out, &k, &d).map_err(io)?;
            }
            if let Some((k, d)) = pending.next_if(|k| k == key).map_err(read_err)? {
                emit(&mut out, &k, &d).map_err(io)?;
            } else if let Some((k, d)) = loaded.seek(key).map_err(read_err)? {
                if self.trusted(&k, &stat) {
                    emit(&mut out, &stat, &d).map_err(io)?;
                }
            }
        }
        while let Some((k, d)) = pending.next_if(|_| true).map_err(read_err)? {
            emit(&mut out, &k, &d).map_err(io)?;
        }
        out.flush().map_err(io)?;
        drop(out);
        tmp.as_file()
            .write_all_at(&written.to_le_bytes(), 8)
            .map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&self.path).map_err(|e| ContextError::Io {
            path: self.path.clone(),
            source: e.error,
        })?;
        Ok(())
    }
}

/// The directory holding the cache file `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The merged fresh records with one record of look-ahead.
struct Pending<'a> {
    merged: Merged<'a>,
    head: Option<Record>,
}

impl<'a> Pending<'a> {
    fn new(mut merged: Merged<'a>) -> std::io::Result<Pending<'a>> {
        let head = merged.next().transpose()?;
        Ok(Pending { merged, head })
    }

    /// Takes the head record if its (dev, ino) satisfies `pred`.
    fn next_if(&mut self, pred: impl Fn((u64, u64)) -> bool) -> std::io::Result<Option<Record>> {
        match self.head {
            Some((k, _)) if pred((k.dev, k.ino)) => {
                let taken = self.head.take();
                self.head = self.merged.next().transpose()?;
                Ok(taken)
            }
            _ => Ok(None),
        }
    }
}

/// `Read` from a file at an own offset (`pread`), so lookups sharing the file are unaffected.
struct AtReader<'a> {
    file: &'a std::fs::File,
    pos: u64,
}

impl Read for AtReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Where a [`Cursor`] reads records from.
enum Source<'a> {
    Memory(&'a [u8]),
    Disk(std::io::BufReader<AtReader<'a>>),
}

/// The loaded records read in order; [`Cursor::seek`] moves forward only, so a walk over
/// keys in increasing order reads the file once.
struct Cursor<'a> {
    source: Source<'a>,
    /// Records not read yet.
    left: usize,
    head: Option<Record>,
}

impl Cursor<'_> {
    fn read_next(&mut self) -> std::io::Result<Option<Record>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        match &mut self.source {
            Source::Memory(bytes) => {
                let (r, rest) = bytes.split_at(RECORD.min(bytes.len()));
                *bytes = rest;
                Ok((r.len() == RECORD).then(|| decode_record(r)))
            }
            Source::Disk(input) => {
                let mut r = [0u8; RECORD];
                input.read_exact(&mut r)?;
                Ok(Some(decode_record(&r)))
            }
        }
    }

    /// The record for `key`, skipping every record before it. Keys must be asked for in
    /// increasing order.
    fn seek(&mut self, key: (u64, u64)) -> std::io::Result<Option<Record>> {
        loop {
            if self.head.is_none() {
                self.head = self.read_next()?;
            }
            match self.head {
                None => return Ok(None),
                Some((k, d)) => match (k.dev, k.ino).cmp(&key) {
                    std::cmp::Ordering::Less => self.head = None,
                    std::cmp::Ordering::Equal => return Ok(Some((k, d))),
                    std::cmp::Ordering::Greater => return Ok(None),
                },
            }
        }
    }
}

/// The (dev, ino) of an encoded record.
fn record_key(r: &[u8]) -> (u64, u64) {
    let mut dev = [0u8; 8];
    let mut ino = [0u8; 8];
    dev.copy_from_slice(&r[0..8]);
    ino.copy_from_slice(&r[8..16]);
    (u64::from_le_bytes(dev), u64::from_le_bytes(ino))
}

/// Streams a big cache file: checks it as [`well_formed`] does and keeps the key of every
/// [`BLOCK`]-th record. `None` when it is not a well-formed cache file.
fn index_file(file: std::fs::File) -> Option<Loaded> {
    use std::io::Read as _;
    let len = file.metadata().ok()?.len();
    let mut input = std::io::BufReader::with_capacity(1 << 16, &file);
    let mut header = [0u8; HEADER];
    input.read_exact(&mut header).ok()?;
    if &header[..8] != MAGIC {
        return None;
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&header[8..]);
    let count = usize::try_from(u64::from_le_bytes(count)).ok()?;
    if (count as u64).checked_mul(RECORD as u64)? != len.checked_sub(HEADER as u64)? {
        return None;
    }
    let mut firsts = Vec::with_capacity(count.div_ceil(BLOCK));
    let mut prev = None;
    let mut r = [0u8; RECORD];
    for k in 0..count {
        input.read_exact(&mut r).ok()?;
        let key = record_key(&r);
        if prev.is_some_and(|p| p >= key) {
            return None;
        }
        prev = Some(key);
        if k % BLOCK == 0 {
            firsts.push(key);
        }
    }
    drop(input);
    Some(Loaded::Disk {
        file,
        count,
        firsts,
    })
}

/// Appends the [`RECORD`] bytes of (`k`, `content`) to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, k: &StatKey, content: &Digest) {
    out.extend_from_slice(&k.dev.to_le_bytes());
    out.extend_from_slice(&k.ino.to_le_bytes());
    out.extend_from_slice(&k.size.to_le_bytes());
    out.extend_from_slice(&k.mtime_ns.to_le_bytes());
    out.extend_from_slice(&k.ctime_ns.to_le_bytes());
    out.extend_from_slice(content.as_bytes());
}

/// Decodes one record; `r` is exactly [`RECORD`] bytes.
pub(crate) fn decode_record(r: &[u8]) -> (StatKey, Digest) {
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&r[i * 8..i * 8 + 8]);
        b
    };
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&r[40..72]);
    (
        StatKey {
            dev: u64::from_le_bytes(word(0)),
            ino: u64::from_le_bytes(word(1)),
            size: u64::from_le_bytes(word(2)),
            mtime_ns: i64::from_le_bytes(word(3)),
            ctime_ns: i64::from_le_bytes(word(4)),
        },
        Digest::from_bytes(digest),
    )
}

/// Whether `bytes` is exactly a cache file: magic, a count matching the length, and records
/// strictly increasing by (dev, ino) (binary search relies on it).
fn well_formed(bytes: &[u8]) -> bool {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return false;
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&bytes[8..16]);
    let body = bytes.len() - HEADER;
    let Ok(count) = usize::try_from(u64::from_le_bytes(count)) else {
        return false;
    };
    if count.checked_mul(RECORD) != Some(body) {
        return false;
    }
    let keys = bytes[HEADER..].chunks_exact(RECORD).map(|r| {
        let (k, _) = decode_record(r);
        (k.dev, k.ino)
    });
    let mut prev = None;
    for key in keys {
        if prev.is_some_and(|p| p >= key) {
            return false;
        }
        prev = Some(key);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64, t: i64) -> StatKey {
        StatKey {
            dev: 1,
            ino,
            size: 3,
            mtime_ns: t,
            ctime_ns: t,
        }
    }

    #[test]
    fn round_trip_carry_over_and_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c");
        let empty = StatCache::load(&path);
        assert_eq!(empty.lookup(&key(5, 1)), None);
        empty.remember(key(5, 1), Digest::of(b"five"));
        empty.remember(key(2, 1), Digest::of(b"two"));
        empty
            .save(|| [key(2, 1), key(5, 1), key(9, 1)].into_iter())
            .expect("save");

        let loaded = StatCache::load(&path);
        assert_eq!(loaded.count(), 2);
        assert_eq!(loaded.lookup(&key(5, 1)), Some(Digest::of(b"five")));
        assert_eq!(loaded.lookup(&key(5, 2)), None, "changed mtime");
        assert_eq!(loaded.lookup(&key(7, 1)), None, "unknown inode");
        // Unchanged: not rewritten.
        let before = std::fs::metadata(&path).expect("meta").modified().ok();
        loaded
            .save(|| [key(2, 1), key(5, 1)].into_iter())
            .expect("save");
        assert_eq!(
            std::fs::metadata(&path).expect("meta").modified().ok(),
            before
        );
        // A file gone: its record is dropped.
        loaded.save(|| [key(5, 1)].into_iter()).expect("save");
        let again = StatCache::load(&path);
        assert_eq!(again.count(), 1);
        assert_eq!(again.lookup(&key(2, 1)), None);

        let bytes = std::fs::read(&path).expect("read");
        assert!(well_formed(&bytes));
        assert!(!well_formed(&bytes[..bytes.len() - 1]), "truncated");
        assert!(
            !well_formed(b"RBSTATC1\x00\x00\x00\x00\x00\x00\x00\x00"),
            "old format"
        );
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(!well_formed(&extra), "trailing bytes");
    }

    #[test]
    fn big_cache_is_searched_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c");
        let n = (IN_MEMORY_MAX as usize / RECORD) + 2 * BLOCK + 5;
        let c = StatCache::load(&path);
        for ino in 0..n as u64 {
            c.remember(key(ino * 2, 1), Digest::of(&ino.to_le_bytes()));
        }
        c.save(|| (0..n as u64).map(|ino| key(ino * 2, 1)))
            .expect("save");
        let loaded = StatCache::load(&path);
        assert!(matches!(loaded.loaded, Loaded::Disk { .. }));
        assert_eq!(loaded.count(), n);
        for ino in [0, 1, 31, 32, 33, n as u64 / 2, n as u64 - 1] {
            let want = Digest::of(&ino.to_le_bytes());
            assert_eq!(loaded.lookup(&key(ino * 2, 1)), Some(want), "{ino}");
            assert_eq!(loaded.lookup(&key(ino * 2 + 1, 1)), None, "gap {ino}");
        }
        assert_eq!(loaded.lookup(&key(n as u64 * 2, 1)), None, "past the end");
        // Unchanged: not rewritten; one file gone: rewritten without it.
        let before = std::fs::metadata(&path).expect("meta").modified().ok();
        loaded
            .save(|| (0..n as u64).map(|ino| key(ino * 2, 1)))
            .expect("save");
        assert_eq!(
            std::fs::metadata(&path).expect("meta").modified().ok(),
            before
        );
        loaded
            .save(|| (1..n as u64).map(|ino| key(ino * 2, 1)))
            .expect("save");
        let again = StatCache::load(&path);
        assert_eq!(again.count(), n - 1);
        assert_eq!(again.lookup(&key(0, 1)), None);
        assert_eq!(
            again.lookup(&key(2, 1)),
            Some(Digest::of(&1u64.to_le_bytes()))
        );
        // Corrupt (unsorted) big file: empty.
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[HEADER..HEADER + RECORD].copy_from_slice(&[0xff; RECORD]);
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(StatCache::load(&path).count(), 0);
    }

    #[test]
    fn spilled_fresh_records_merge_with_loaded_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c");
        let first = StatCache::load(&path);
        for ino in [10, 20, 30, 40] {
            first.remember(key(ino, 1), Digest::of(&ino.to_le_bytes()));
        }
        first
            .save(|| [key(10, 1), key(20, 1), key(30, 1), key(40, 1)].into_iter())
            .expect("save");
        let mut second = StatCache::load(&path);
        second.fresh = Fresh::with_run(dir.path(), 2);
        // 30 changed (re-hashed), 40 gone, 5/25/35 new, 99 hashed but not listed (kept).
        for ino in [35, 5, 99, 25] {
            second.remember(key(ino, 1), Digest::of(&ino.to_le_bytes()));
        }
        second.remember(key(30, 2), Digest::of(b"thirty, changed"));
        assert!(second.fresh.runs() >= 2);
        let listed = [5, 10, 20, 25, 30, 35];
        second
            .save(|| {
                listed
                    .iter()
                    .map(|&ino| key(ino, if ino == 30 { 2 } else { 1 }))
            })
            .expect("save");
        let third = StatCache::load(&path);
        assert_eq!(third.count(), 7);
        for ino in [5, 10, 20, 25, 35, 99] {
            assert_eq!(
                third.lookup(&key(ino, 1)),
                Some(Digest::of(&ino.to_le_bytes())),
                "{ino}"
            );
        }
        assert_eq!(
            third.lookup(&key(30, 2)),
            Some(Digest::of(b"thirty, changed"))
        );
        assert_eq!(third.lookup(&key(40, 1)), None, "gone");
        let unnamed_runs_left = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(
            unnamed_runs_left, 1,
            "only the cache file is in its directory"
        );
    }

    #[test]
    fn racy_records_are_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c");
        let far_future = i64::MAX - 1;
        let c = StatCache::load(&path);
        c.remember(key(1, far_future), Digest::of(b"x"));
        c.save(|| [key(1, far_future)].into_iter()).expect("save");
        let loaded = StatCache::load(&path);
        assert_eq!(loaded.count(), 1);
        assert_eq!(loaded.lookup(&key(1, far_future)), None);
    }
}
