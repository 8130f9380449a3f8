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
//! File format, read in one go and searched in place (nothing is parsed into a map): the
//! magic `RBSTATC2`, a little-endian `u64` record count, then fixed 72-byte records sorted by
//! (`dev`, `ino`) strictly increasing: `dev`, `ino`, `size` (`u64`), `mtime_ns`, `ctime_ns`
//! (`i64`) and the 32-byte content digest. It is written to a temporary file, fsynced and
//! renamed into place (crash-safe: a reader sees the old or the new file). A missing,
//! unreadable, truncated, unsorted or otherwise corrupt cache file is treated as empty.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rbuild_types::Digest;

use crate::error::ContextError;
use crate::walk::StatKey;

/// Magic and format version; a file starting otherwise is ignored.
const MAGIC: &[u8; 8] = b"RBSTATC2";
/// Header: magic + record count.
const HEADER: usize = 16;
/// One record: five 8-byte fields and a digest.
const RECORD: usize = 5 * 8 + 32;

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
    fresh: Mutex<Vec<(StatKey, Digest)>>,
}

impl StatCache {
    /// Loads the cache at `path`; absent, unreadable or corrupt means empty. A file over
    /// [`IN_MEMORY_MAX`] is validated by streaming it and then searched on disk.
    pub fn load(path: &Path) -> StatCache {
        let mut cache = StatCache {
            path: path.to_path_buf(),
            loaded: Loaded::Memory(Vec::new()),
            trusted_before_ns: i64::MIN,
            fresh: Mutex::new(Vec::new()),
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
                use std::os::unix::fs::FileExt as _;
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
        let racy = key.mtime_ns >= self.trusted_before_ns || key.ctime_ns >= self.trusted_before_ns;
        (key == *stat && !racy).then_some(content)
    }

    /// Remembers the content digest of a file hashed as of `stat`.
    pub fn remember(&self, stat: StatKey, content: Digest) {
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.push((stat, content));
        }
    }

    /// Writes the cache for the files now in the context: every record hashed since loading
    /// plus every loaded record still trusted for one of them. `files` gives their stat data
    /// sorted by (dev, ino) (hard links repeat a key), each call from the start. Records of
    /// files that disappeared or changed are dropped. Nothing is written when the result
    /// equals the loaded file. Streamed (memory does not grow with the number of records):
    /// temporary file, fsync, rename.
    pub fn save<I: Iterator<Item = StatKey>>(
        &self,
        files: impl Fn() -> I,
    ) -> Result<(), ContextError> {
        let Ok(mut fresh) = self.fresh.lock() else {
            return Ok(());
        };
        fresh.sort_unstable_by_key(|(k, _)| (k.dev, k.ino));
        fresh.dedup_by_key(|(k, _)| (k.dev, k.ino));
        if fresh.is_empty() {
            let mut carried = 0usize;
            let mut last = None;
            for stat in files() {
                if last == Some((stat.dev, stat.ino)) {
                    continue;
                }
                last = Some((stat.dev, stat.ino));
                if self.lookup(&stat).is_some() {
                    carried += 1;
                }
            }
            if carried == self.count() {
                return Ok(());
            }
        }
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
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
        let mut pending = fresh.iter().peekable();
        let mut last = None;
        for stat in files() {
            let key = (stat.dev, stat.ino);
            if last == Some(key) {
                continue;
            }
            last = Some(key);
            // Fresh records sort in first (those of files not listed are kept too).
            while let Some((k, d)) = pending.next_if(|(k, _)| (k.dev, k.ino) < key) {
                emit(&mut out, k, d).map_err(io)?;
            }
            if let Some((k, d)) = pending.next_if(|(k, _)| (k.dev, k.ino) == key) {
                emit(&mut out, k, d).map_err(io)?;
            } else if let Some(d) = self.lookup(&stat) {
                emit(&mut out, &stat, &d).map_err(io)?;
            }
        }
        for (k, d) in pending {
            emit(&mut out, k, d).map_err(io)?;
        }
        out.flush().map_err(io)?;
        drop(out);
        {
            use std::os::unix::fs::FileExt as _;
            tmp.as_file()
                .write_all_at(&written.to_le_bytes(), 8)
                .map_err(io)?;
        }
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&self.path).map_err(|e| ContextError::Io {
            path: self.path.clone(),
            source: e.error,
        })?;
        Ok(())
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

fn encode_record(out: &mut Vec<u8>, k: &StatKey, content: &Digest) {
    out.extend_from_slice(&k.dev.to_le_bytes());
    out.extend_from_slice(&k.ino.to_le_bytes());
    out.extend_from_slice(&k.size.to_le_bytes());
    out.extend_from_slice(&k.mtime_ns.to_le_bytes());
    out.extend_from_slice(&k.ctime_ns.to_le_bytes());
    out.extend_from_slice(content.as_bytes());
}

/// Decodes one record; `r` is exactly [`RECORD`] bytes.
fn decode_record(r: &[u8]) -> (StatKey, Digest) {
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
