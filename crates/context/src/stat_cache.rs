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

/// A loaded stat cache. Invariants: `bytes` is empty or a well-formed file (header plus
/// sorted records); `trusted_before_ns` is the cache file's mtime when loaded (`i64::MIN`
/// when nothing was loaded); `fresh` holds the records of files hashed since.
#[derive(Debug)]
pub struct StatCache {
    path: PathBuf,
    bytes: Vec<u8>,
    trusted_before_ns: i64,
    fresh: Mutex<Vec<(StatKey, Digest)>>,
}

impl StatCache {
    /// Loads the cache at `path`; absent, unreadable or corrupt means empty.
    pub fn load(path: &Path) -> StatCache {
        let mut cache = StatCache {
            path: path.to_path_buf(),
            bytes: Vec::new(),
            trusted_before_ns: i64::MIN,
            fresh: Mutex::new(Vec::new()),
        };
        let Ok(meta) = std::fs::metadata(path) else {
            return cache;
        };
        let Ok(bytes) = std::fs::read(path) else {
            return cache;
        };
        if well_formed(&bytes) {
            cache.trusted_before_ns = meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec());
            cache.bytes = bytes;
        }
        cache
    }

    fn count(&self) -> usize {
        self.bytes.len().saturating_sub(HEADER) / RECORD
    }

    fn record(&self, k: usize) -> (StatKey, Digest) {
        decode_record(&self.bytes[HEADER + k * RECORD..HEADER + (k + 1) * RECORD])
    }

    /// The (dev, ino) of record `k`, decoded alone for the binary search.
    fn key_of(&self, k: usize) -> (u64, u64) {
        let at = HEADER + k * RECORD;
        let mut dev = [0u8; 8];
        let mut ino = [0u8; 8];
        dev.copy_from_slice(&self.bytes[at..at + 8]);
        ino.copy_from_slice(&self.bytes[at + 8..at + 16]);
        (u64::from_le_bytes(dev), u64::from_le_bytes(ino))
    }

    /// The remembered content digest for a file with stat data `stat`, if unchanged and not
    /// racy.
    pub fn lookup(&self, stat: &StatKey) -> Option<Digest> {
        let (mut lo, mut hi) = (0, self.count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key_of(mid).cmp(&(stat.dev, stat.ino)) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let (key, content) = self.record(mid);
                    let racy = key.mtime_ns >= self.trusted_before_ns
                        || key.ctime_ns >= self.trusted_before_ns;
                    return (key == *stat && !racy).then_some(content);
                }
            }
        }
        None
    }

    /// Remembers the content digest of a file hashed as of `stat`.
    pub fn remember(&self, stat: StatKey, content: Digest) {
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.push((stat, content));
        }
    }

    /// Writes the cache for the files now in the context (`files`: their stat data): every
    /// record hashed since loading plus every loaded record still trusted for one of them.
    /// Records of files that disappeared or changed are dropped. Nothing is written when the
    /// result equals the loaded file. Temporary file, fsync, rename.
    pub fn save(&self, files: impl Iterator<Item = StatKey>) -> Result<(), ContextError> {
        let mut fresh = match self.fresh.lock() {
            Ok(f) => f.clone(),
            Err(_) => return Ok(()),
        };
        fresh.sort_unstable_by_key(|(k, _)| (k.dev, k.ino));
        let fresh_count = fresh.len();
        let mut records = fresh;
        let mut carried = 0usize;
        for stat in files {
            let known = records
                .get(..fresh_count)
                .unwrap_or(&[])
                .binary_search_by_key(&(stat.dev, stat.ino), |(k, _)| (k.dev, k.ino))
                .is_ok();
            if known {
                continue;
            }
            if let Some(content) = self.lookup(&stat) {
                records.push((stat, content));
                carried += 1;
            }
        }
        records.sort_unstable_by_key(|(k, _)| (k.dev, k.ino));
        records.dedup_by_key(|(k, _)| (k.dev, k.ino));
        if fresh_count == 0 && records.len() == self.count() && carried == self.count() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(HEADER + records.len() * RECORD);
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(&(records.len() as u64).to_le_bytes());
        for (k, content) in &records {
            encode_record(&mut body, k, content);
        }
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(ContextError::io(&dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(ContextError::io(&dir))?;
        tmp.write_all(&body).map_err(ContextError::io(tmp.path()))?;
        tmp.as_file()
            .sync_all()
            .map_err(ContextError::io(tmp.path()))?;
        tmp.persist(&self.path).map_err(|e| ContextError::Io {
            path: self.path.clone(),
            source: e.error,
        })?;
        Ok(())
    }
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
            .save([key(2, 1), key(5, 1), key(9, 1)].into_iter())
            .expect("save");

        let loaded = StatCache::load(&path);
        assert_eq!(loaded.count(), 2);
        assert_eq!(loaded.lookup(&key(5, 1)), Some(Digest::of(b"five")));
        assert_eq!(loaded.lookup(&key(5, 2)), None, "changed mtime");
        assert_eq!(loaded.lookup(&key(7, 1)), None, "unknown inode");
        // Unchanged: not rewritten.
        let before = std::fs::metadata(&path).expect("meta").modified().ok();
        loaded
            .save([key(2, 1), key(5, 1)].into_iter())
            .expect("save");
        assert_eq!(
            std::fs::metadata(&path).expect("meta").modified().ok(),
            before
        );
        // A file gone: its record is dropped.
        loaded.save([key(5, 1)].into_iter()).expect("save");
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
    fn racy_records_are_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c");
        let far_future = i64::MAX - 1;
        let c = StatCache::load(&path);
        c.remember(key(1, far_future), Digest::of(b"x"));
        c.save([key(1, far_future)].into_iter()).expect("save");
        let loaded = StatCache::load(&path);
        assert_eq!(loaded.count(), 1);
        assert_eq!(loaded.lookup(&key(1, far_future)), None);
    }
}
