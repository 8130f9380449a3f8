//! [`BuildContext`]: the included paths of a context directory, hashed lazily and in parallel.
//!
//! Invariants: `entries` is in walk order (see `walk`) with unique `rel`s, so a path is found
//! by binary search (no per-path index is kept: memory matters at a million files);
//! `digests[i]` once set is the [`entry_digest`](crate::hash::entry_digest) of `entries[i]`.
//! The walk happens once, in [`BuildContext::from_dir`]; content is hashed only when
//! [`BuildContext::digest`] or [`BuildContext::select`] need it, then remembered.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use rbuild_types::{Digest, Hasher};

use crate::dockerignore::{find_ignore_file, parse_ignore_file, PatternMatcher};
use crate::entry::{ContextEntry, EntryKind};
use crate::error::ContextError;
use crate::filter::Filter;
use crate::hash::{content_digest, entry_digest, hash_entry};
use crate::stat_cache::StatCache;
use crate::walk::{walk, walk_order, StatKey};

/// A build context: what a build can see. `Send + Sync`; share it behind an `Arc`.
#[derive(Debug)]
pub struct BuildContext {
    root: Option<PathBuf>,
    root_entry: ContextEntry,
    pub(crate) entries: Vec<ContextEntry>,
    digests: Vec<OnceLock<Digest>>,
    /// Stat data of `entries[i]` as walked (zero for the empty context).
    stats: Vec<StatKey>,
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
                let patterns = parse_ignore_file(&String::from_utf8_lossy(&bytes));
                PatternMatcher::new(&patterns).map_err(|source| ContextError::IgnoreFile {
                    file: file.clone(),
                    source,
                })?
            }
            None => PatternMatcher::default(),
        };
        let walked = walk(root, &Filter::excluding(matcher))?;
        let stats: Vec<StatKey> = walked.iter().map(|w| w.stat).collect();
        let mut entries: Vec<ContextEntry> = walked.into_iter().map(|w| w.entry).collect();
        // Collected in place into the walk's allocation: give its slack back.
        entries.shrink_to_fit();
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
        Ok(BuildContext::from_entries(
            Some(root.to_path_buf()),
            root_entry,
            entries,
            stats,
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
        BuildContext::from_entries(None, root_entry, Vec::new(), Vec::new())
    }

    fn from_entries(
        root: Option<PathBuf>,
        root_entry: ContextEntry,
        entries: Vec<ContextEntry>,
        stats: Vec<StatKey>,
    ) -> BuildContext {
        let digests = entries.iter().map(|_| OnceLock::new()).collect();
        BuildContext {
            root,
            root_entry,
            entries,
            digests,
            stats,
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
    /// path, device, inode, size, mtime and ctime are unchanged is not read again, unless its
    /// timestamps are racy (not older than the cache file). A missing or corrupt cache file
    /// counts as empty.
    ///
    /// [`save_stat_cache`]: BuildContext::save_stat_cache
    pub fn with_stat_cache(mut self, path: &Path) -> BuildContext {
        self.stat_cache = Some(StatCache::load(path));
        self
    }

    /// Writes the stat cache (if one is in use) with every file hashed so far, dropping
    /// records of files under this context's root that no longer exist. Atomic: temporary
    /// file, fsync, rename. A no-op for the empty context, for unpacked archives, and when
    /// every digest came from the cache (nothing new to remember).
    pub fn save_stat_cache(&self) -> Result<(), ContextError> {
        let (Some(cache), Some(root)) = (&self.stat_cache, &self.root) else {
            return Ok(());
        };
        if self._keep.is_some() {
            // An unpacked archive lives in a fresh temporary directory each time: its records
            // could never be hit again and would only pile up.
            return Ok(());
        }
        if !cache.is_dirty() {
            // Nothing was hashed anew: the file on disk is still right (records of files that
            // disappeared meanwhile are dropped at the next rewrite).
            return Ok(());
        }
        let keep: HashSet<String> = self
            .entries
            .iter()
            .map(|e| e.host_path.to_string_lossy().into_owned())
            .collect();
        cache.retain_under(root, &keep);
        cache.save()
    }

    /// The context directory, `None` for the empty context.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Every included path, in walk order (pre-order, siblings sorted byte-wise), relative and
    /// `/`-separated. The root itself is not listed.
    pub fn list(&self) -> Result<Vec<ContextEntry>, ContextError> {
        Ok(self.entries.clone())
    }

    /// Every included path, in walk order, without copying (see [`BuildContext::list`]).
    pub fn entries(&self) -> &[ContextEntry] {
        &self.entries
    }

    /// Digest of the whole included context: every path with its entry digest.
    pub fn digest(&self) -> Result<Digest, ContextError> {
        let all: Vec<usize> = (0..self.entries.len()).collect();
        self.hash_all(&all)?;
        let mut h = Hasher::new();
        h.field(b"rbuild-context-v1");
        for (i, e) in self.entries.iter().enumerate() {
            h.field(e.rel.as_bytes());
            h.field(self.entry_digest(i)?.as_bytes());
        }
        Ok(h.finish())
    }

    /// The position of the entry whose path is `rel`, if listed.
    pub(crate) fn position(&self, rel: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|e| walk_order(&e.rel, rel))
            .ok()
    }

    /// The entry for the context root itself (`rel` is `.`).
    pub(crate) fn root_entry(&self) -> &ContextEntry {
        &self.root_entry
    }

    /// The digest of `entries[i]`, hashing it on first use.
    pub(crate) fn entry_digest(&self, i: usize) -> Result<Digest, ContextError> {
        let cell = &self.digests[i];
        if let Some(d) = cell.get() {
            return Ok(*d);
        }
        let e = &self.entries[i];
        let d = match (&self.stat_cache, e.kind) {
            (Some(cache), EntryKind::File) => {
                let stat = &self.stats[i];
                let content = match cache.lookup(&e.host_path, stat) {
                    Some(c) => c,
                    None => {
                        let c = content_digest(&e.host_path)?;
                        cache.record(&e.host_path, stat, c);
                        c
                    }
                };
                entry_digest(e, Some(content))
            }
            _ => hash_entry(e)?,
        };
        Ok(*cell.get_or_init(|| d))
    }

    /// Hashes the given entries in parallel (those not hashed yet).
    pub(crate) fn hash_all(&self, indices: &[usize]) -> Result<(), ContextError> {
        indices
            .par_iter()
            .try_for_each(|&i| self.entry_digest(i).map(|_| ()))
    }
}
