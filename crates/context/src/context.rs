//! [`BuildContext`]: the included paths of a context directory, hashed lazily and in parallel.
//!
//! Invariants: `table` is in walk order (see `walk`) with unique paths, so a path is found by
//! binary search (no per-path index is kept: memory matters at a million files); a digest
//! remembered in `memo` for position `i` is the [`digest_fields`] of entry `i`. The walk
//! happens once, in [`BuildContext::from_dir`]; content is hashed only when
//! [`BuildContext::digest`] or [`BuildContext::select`] need it. `select` remembers what it
//! hashed (several COPYs often share files); `digest` streams over the whole context and
//! remembers nothing, so listing a million-file context needs no per-entry digest memory.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use rbuild_types::bytes::{escape, unescape};
use rbuild_types::{Digest, Hasher};

use crate::dockerignore::{find_ignore_file, parse_ignore_file, PatternMatcher};
use crate::entry::{host_path, ContextEntry, EntryKind};
use crate::error::ContextError;
use crate::filter::Filter;
use crate::hash::{content_digest, content_digest_checked, digest_fields};
use crate::memo::Memo;
use crate::stat_cache::StatCache;
use crate::table::Table;
use crate::walk::walk_table;

/// Entries hashed per parallel batch by [`BuildContext::digest`].
const DIGEST_BATCH: usize = 4096;

/// A build context: what a build can see. `Send + Sync`; share it behind an `Arc`.
#[derive(Debug)]
pub struct BuildContext {
    root: Option<PathBuf>,
    root_entry: ContextEntry,
    pub(crate) table: Table,
    memo: Memo,
    stat_cache: Option<StatCache>,
    /// Keeps an unpacked archive's temporary directory alive as long as the context.
    _keep: Option<Arc<tempfile::TempDir>>,
}

impl BuildContext {
    /// Reads the context directory `root`, honouring `<dockerfile-name>.dockerignore` next to
    /// `dockerfile` if present, else `root/.dockerignore`. `dockerfile` may be outside `root`.
    pub fn from_dir(root: &Path, dockerfile: Option<&Path>) -> Result<BuildContext, ContextError> {
        let meta = std::fs::metadata(root).map_err(ContextError::io(root))?;
        if !meta.is_dir() {
            return Err(ContextError::NotADirectory {
                path: root.to_path_buf(),
            });
        }
        let ignore_file = find_ignore_file(root, dockerfile).map_err(ContextError::io(root))?;
        let matcher = match &ignore_file {
            Some(file) => {
                let bytes = std::fs::read(file).map_err(ContextError::io(file))?;
                // Escaped like the paths it is matched against (see `entry`).
                let patterns = parse_ignore_file(&escape(&bytes));
                PatternMatcher::new(&patterns).map_err(|source| ContextError::IgnoreFile {
                    file: file.clone(),
                    source,
                })?
            }
            None => PatternMatcher::default(),
        };
        let table = walk_table(root, &Filter::excluding(matcher))?;
        let root_entry = ContextEntry {
            rel: ".".to_string(),
            kind: EntryKind::Dir,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: 0,
            link_target: None,
            host_path: root.to_path_buf(),
        };
        Ok(BuildContext::from_table(
            Some(root.to_path_buf()),
            root_entry,
            table,
        ))
    }

    /// The empty context (`rbuild - < Dockerfile`): only the root directory `.` exists.
    pub fn empty() -> BuildContext {
        let root_entry = ContextEntry {
            rel: ".".to_string(),
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            link_target: None,
            host_path: PathBuf::new(),
        };
        BuildContext::from_table(None, root_entry, Table::default())
    }

    fn from_table(root: Option<PathBuf>, root_entry: ContextEntry, table: Table) -> BuildContext {
        BuildContext {
            root,
            root_entry,
            memo: Memo::new(table.len()),
            table,
            stat_cache: None,
            _keep: None,
        }
    }

    /// Ties the lifetime of `dir` (an unpacked archive) to this context.
    pub(crate) fn keeping(mut self, dir: Arc<tempfile::TempDir>) -> BuildContext {
        self._keep = Some(dir);
        self
    }

    /// Uses the persistent stat cache at `path` (created on [`save_stat_cache`]): a file whose
    /// device, inode, size, mtime and ctime are unchanged is not read again, unless its
    /// timestamps are racy (not older than the cache file). A missing or corrupt cache file
    /// counts as empty.
    ///
    /// [`save_stat_cache`]: BuildContext::save_stat_cache
    pub fn with_stat_cache(mut self, path: &Path) -> BuildContext {
        self.stat_cache = Some(StatCache::load(path));
        self
    }

    /// Writes the stat cache (if one is in use): every file hashed so far plus the loaded
    /// records still valid for files of this context; records of files that no longer exist
    /// or changed are dropped. Atomic: temporary file, fsync, rename. A no-op for the empty
    /// context, for unpacked archives, and when the result equals the file on disk.
    pub fn save_stat_cache(&self) -> Result<(), ContextError> {
        let (Some(cache), Some(_)) = (&self.stat_cache, &self.root) else {
            return Ok(());
        };
        if self._keep.is_some() {
            // An unpacked archive lives in a fresh temporary directory each time: its records
            // could never be hit again and would only pile up.
            return Ok(());
        }
        // The files by (dev, ino), as positions (4 bytes each, not a record each; the table
        // holds fewer than 2^32 entries).
        let mut files: Vec<u32> = (0..self.table.len())
            .filter(|&i| self.table.kind(i) == EntryKind::File)
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        files.sort_unstable_by_key(|&i| {
            let k = self.table.stat_key(i as usize);
            (k.dev, k.ino)
        });
        cache.save(|| files.iter().map(|&i| self.table.stat_key(i as usize)))
    }

    /// The context directory, `None` for the empty context.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Number of included paths (the root itself not counted).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing but the root is included.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Every included path, in walk order (pre-order, siblings sorted byte-wise), relative and
    /// `/`-separated. The root itself is not listed.
    pub fn list(&self) -> Result<Vec<ContextEntry>, ContextError> {
        Ok((0..self.table.len()).map(|i| self.entry(i)).collect())
    }

    /// Every included path and its kind, in walk order, without materialising entries.
    pub fn paths(&self) -> impl Iterator<Item = (&str, EntryKind)> + '_ {
        (0..self.table.len()).map(|i| (self.table.rel(i), self.table.kind(i)))
    }

    /// Entry `i` as the public type.
    pub(crate) fn entry(&self, i: usize) -> ContextEntry {
        self.table
            .entry(self.root.as_deref().unwrap_or(Path::new("")), i)
    }

    /// Digest of the whole included context: every path with its entry digest. Hashes in
    /// parallel batches and remembers nothing it did not already know (see the module docs).
    pub fn digest(&self) -> Result<Digest, ContextError> {
        let mut h = Hasher::new();
        h.field(b"rbuild-context-v1");
        let n = self.table.len();
        let mut start = 0;
        while start < n {
            let end = (start + DIGEST_BATCH).min(n);
            let batch: Vec<Digest> = (start..end)
                .into_par_iter()
                .map(|i| match self.memo.get(i) {
                    Some(d) => Ok(d),
                    None => self.compute_digest(i),
                })
                .collect::<Result<_, _>>()?;
            for (i, d) in (start..end).zip(&batch) {
                h.field(&unescape(self.table.rel(i)));
                h.field(d.as_bytes());
            }
            start = end;
        }
        Ok(h.finish())
    }

    /// Whether entry digests come from a persistent stat cache (a directory context), so that
    /// asking for them again after keying costs no re-read of their contents.
    pub fn remembers_digests(&self) -> bool {
        self.stat_cache.is_some()
    }

    /// The stat data the walk found for entry `i`.
    pub(crate) fn stat_key(&self, i: usize) -> crate::StatKey {
        self.table.stat_key(i)
    }

    /// The position of the entry whose path is `rel`, if listed.
    pub(crate) fn position(&self, rel: &str) -> Option<usize> {
        self.table.position(rel)
    }

    /// The entry for the context root itself (`rel` is `.`).
    pub(crate) fn root_entry(&self) -> &ContextEntry {
        &self.root_entry
    }

    /// The digest of entry `i`, hashing it on first use and remembering it.
    pub(crate) fn entry_digest(&self, i: usize) -> Result<Digest, ContextError> {
        if let Some(d) = self.memo.get(i) {
            return Ok(d);
        }
        Ok(self.memo.set(i, self.compute_digest(i)?))
    }

    /// The digest of entry `i` as [`entry_digest`](Self::entry_digest) gives it, without
    /// remembering a newly computed one (for selections too big to remember).
    pub(crate) fn entry_digest_unremembered(&self, i: usize) -> Result<Digest, ContextError> {
        match self.memo.get(i) {
            Some(d) => Ok(d),
            None => self.compute_digest(i),
        }
    }

    /// The digest of entry `i`, through the stat cache when one is in use.
    fn compute_digest(&self, i: usize) -> Result<Digest, ContextError> {
        let m = self.table.meta(i);
        let content = match m.kind {
            EntryKind::File => {
                let host = || {
                    host_path(
                        self.root.as_deref().unwrap_or(Path::new("")),
                        self.table.rel(i),
                    )
                };
                Some(match &self.stat_cache {
                    Some(cache) => {
                        let stat = self.table.stat_key(i);
                        match cache.lookup(&stat) {
                            Some(c) => c,
                            None => {
                                let (c, unchanged) = content_digest_checked(&host(), &stat)?;
                                if unchanged {
                                    cache.remember(stat, c);
                                }
                                c
                            }
                        }
                    }
                    None => content_digest(&host())?,
                })
            }
            EntryKind::Dir | EntryKind::Symlink => None,
        };
        Ok(digest_fields(
            m.kind,
            u32::from(m.mode),
            m.uid,
            m.gid,
            self.table.link(i),
            content,
        ))
    }
}
