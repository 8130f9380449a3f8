//! The persistent stat cache: file content digests remembered by (path, dev, inode, size,
//! mtime, ctime), so an unchanged context re-hashes in milliseconds.
//!
//! Racy-timestamp rule (as git's index): a remembered digest is trusted only if the file's
//! mtime and ctime are strictly older than the cache file's own mtime. A file changed within
//! the same filesystem timestamp tick as the cache was written could keep its stat data while
//! its content changed, so such entries are re-hashed.
//!
//! The file is JSON, written to a temporary file, fsynced and renamed into place. A missing or
//! unreadable/corrupt cache file is treated as empty (it is only a cache).

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rbuild_types::Digest;
use serde::{Deserialize, Serialize};

use crate::error::ContextError;
use crate::walk::StatKey;

/// Format version; a file with another version is ignored.
const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    content: Digest,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    /// Keyed by the host path of the file (lossy UTF-8).
    entries: HashMap<String, Record>,
}

/// A loaded stat cache. Invariant: `trusted_before_ns` is the cache file's mtime when loaded
/// (or `i128::MIN` when there was no file, so nothing loaded is trusted); `dirty` is set
/// whenever `entries` differs from the file (a record added or dropped), so an unchanged
/// context does not rewrite it.
#[derive(Debug)]
pub struct StatCache {
    path: PathBuf,
    trusted_before_ns: i128,
    entries: Mutex<HashMap<String, Record>>,
    dirty: AtomicBool,
}

impl StatCache {
    /// Loads the cache at `path`; absent or unreadable means empty.
    pub fn load(path: &Path) -> StatCache {
        let mut cache = StatCache {
            path: path.to_path_buf(),
            trusted_before_ns: i128::MIN,
            entries: Mutex::new(HashMap::new()),
            dirty: AtomicBool::new(true),
        };
        let Ok(meta) = std::fs::metadata(path) else {
            return cache;
        };
        let Ok(bytes) = std::fs::read(path) else {
            return cache;
        };
        if let Ok(file) = serde_json::from_slice::<FileFormat>(&bytes) {
            if file.version == VERSION {
                cache.trusted_before_ns =
                    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
                cache.entries = Mutex::new(file.entries);
                cache.dirty = AtomicBool::new(false);
            }
        }
        cache
    }

    /// The remembered content digest of `host_path`, if its stat data is unchanged and not racy.
    pub fn lookup(&self, host_path: &Path, stat: &StatKey) -> Option<Digest> {
        let key = host_path.to_string_lossy();
        let entries = self.entries.lock().ok()?;
        let r = entries.get(key.as_ref())?;
        let same = r.dev == stat.dev
            && r.ino == stat.ino
            && r.size == stat.size
            && r.mtime_ns == stat.mtime_ns
            && r.ctime_ns == stat.ctime_ns;
        let racy = r.mtime_ns >= self.trusted_before_ns || r.ctime_ns >= self.trusted_before_ns;
        (same && !racy).then_some(r.content)
    }

    /// Remembers the content digest of `host_path` as of `stat`.
    pub fn record(&self, host_path: &Path, stat: &StatKey, content: Digest) {
        self.dirty.store(true, Ordering::Relaxed);
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                host_path.to_string_lossy().into_owned(),
                Record {
                    dev: stat.dev,
                    ino: stat.ino,
                    size: stat.size,
                    mtime_ns: stat.mtime_ns,
                    ctime_ns: stat.ctime_ns,
                    content,
                },
            );
        }
    }

    /// Drops every record under `root` whose path is not in `keep` (files that disappeared).
    pub fn retain_under(&self, root: &Path, keep: &std::collections::HashSet<String>) {
        let prefix = format!("{}/", root.to_string_lossy().trim_end_matches('/'));
        if let Ok(mut entries) = self.entries.lock() {
            let before = entries.len();
            entries.retain(|k, _| !k.starts_with(&prefix) || keep.contains(k));
            if entries.len() != before {
                self.dirty.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Writes the cache: temporary file in the same directory, fsync, rename. Nothing is
    /// written when no record changed since it was loaded.
    pub fn save(&self) -> Result<(), ContextError> {
        if !self.dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        let entries = self.entries.lock().map(|e| e.clone()).unwrap_or_default();
        let body = serde_json::to_vec(&FileFormat {
            version: VERSION,
            entries,
        })
        .map_err(|e| ContextError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
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
