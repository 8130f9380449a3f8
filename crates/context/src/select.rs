//! What a COPY/ADD source selects from a [`BuildContext`], and the digest that keys the copy.

use std::ops::Range;

use rayon::prelude::*;
use rbuild_types::bytes::{escape_str, escaped_lossy, unescape};
use rbuild_types::{Digest, Hasher};

use crate::clean::clean_within_root;
use crate::context::BuildContext;
use crate::dockerignore::PatternMatcher;
use crate::entry::{ContextEntry, EntryKind};
use crate::error::ContextError;
use crate::glob::{has_wildcards, Glob};
use crate::hash::entry_digest;
use crate::resolve::Target;
use crate::view::{view_entry, Kept, SelectionView, ViewRoot};
use crate::walk::walk_order;

/// Selections with at most this many entries remember their entry digests (see
/// [`BuildContext::select_view_excluding`]): 64 Ki digests are ≈ 2.3 MB.
pub const REMEMBER_LIMIT: usize = 65_536;

/// Entries hashed per parallel batch while computing a selection's digest.
const HASH_BATCH: usize = 4096;

/// The result of [`BuildContext::select`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// One item per matched source path (a wildcard can match several), sorted: `rel` is the
    /// matched path (`.` for the whole context).
    pub roots: Vec<ContextEntry>,
    /// For each root that is a directory, every included entry below it (not the root itself),
    /// sorted, pre-order. A root that is a file has no entries here. Entry `rel` is relative to
    /// the CONTEXT root.
    pub entries: Vec<ContextEntry>,
    /// Digest over what is selected: for each root and entry, its path relative to its root,
    /// type, mode, uid/gid, link target and content digest. A directory root contributes only
    /// its contents (COPY copies a directory's contents, so renaming it keeps the digest); a
    /// file or symlink root contributes its basename and metadata.
    pub digest: Digest,
}

impl BuildContext {
    /// What a COPY/ADD source selects. `src` is relative to the context root (a leading `/`
    /// or `./` is ignored, `..` never leaves the root) and may hold `filepath.Match` wildcards
    /// in any segment. Excluded paths are invisible. A plain source that matches nothing is
    /// [`ContextError::NotFound`]; a wildcard matching nothing gives an empty selection.
    ///
    /// Like BuildKit's COPY, symlinks in a source path (and the source itself) are followed
    /// inside the root: a root keeps the name the user wrote (`rel`) but carries the kind,
    /// metadata and `host_path` of what the link leads to, and the entries below a followed
    /// directory are shown under that name. Symlinks *below* a root are never followed.
    pub fn select(&self, src: &str) -> Result<Selection, ContextError> {
        self.select_excluding(src, &PatternMatcher::default())
    }

    /// [`select`](Self::select) leaving out what `exclude` (`COPY --exclude`, `.dockerignore`
    /// syntax) matches: excluded files are neither in the selection nor in its digest, and
    /// with no patterns the result is exactly `select`'s. Patterns are relative to each
    /// selected root: a file root is tested by its base name, an entry below a directory root
    /// by its path relative to that root. An excluded directory stays (holding only what
    /// exceptions re-include) when a `!` exception could match below it, so that re-included
    /// files keep their parents; otherwise it goes with everything below it.
    pub fn select_excluding(
        &self,
        src: &str,
        exclude: &PatternMatcher,
    ) -> Result<Selection, ContextError> {
        let view = self.select_view_excluding(src, exclude)?;
        let mut entries = Vec::with_capacity(view.len() - view.roots.len());
        for r in &view.roots {
            entries.extend(r.kept.iter().map(|i| view_entry(self, r, i)));
        }
        Ok(Selection {
            roots: view.roots.into_iter().map(|r| r.entry).collect(),
            entries,
            digest: view.digest,
        })
    }

    /// Only the [`Selection::digest`] of [`select_excluding`](Self::select_excluding), with
    /// the same errors, without building an entry per selected path: what a cache key needs
    /// (a million-path selection materialised costs hundreds of MB; its digest does not).
    pub fn select_digest_excluding(
        &self,
        src: &str,
        exclude: &PatternMatcher,
    ) -> Result<Digest, ContextError> {
        Ok(self.select_view_excluding(src, exclude)?.digest)
    }

    /// [`select_excluding`](Self::select_excluding) as a [`SelectionView`]: the same roots,
    /// entries (built on demand by [`SelectionView::entries`]) and digest, without one
    /// [`ContextEntry`] per selected path. The entry digests are remembered (for later
    /// selections of the same files) only when the selection has at most
    /// [`REMEMBER_LIMIT`] entries; bigger ones are hashed in batches and forgotten, so memory
    /// does not grow with the selection (the stat cache still spares re-reading contents).
    pub fn select_view_excluding(
        &self,
        src: &str,
        exclude: &PatternMatcher,
    ) -> Result<SelectionView, ContextError> {
        // Context paths are in the escaped form (see `entry`); `src` is text.
        let src = &*escape_str(src);
        let cleaned = clean_within_root(src);
        let sources: Vec<(String, Target)> = if cleaned == "." {
            vec![(cleaned, Target::Root)]
        } else if has_wildcards(&cleaned) {
            self.expand_wildcards(src, &cleaned)?
        } else {
            let target = self
                .resolve(&cleaned)?
                .ok_or_else(|| ContextError::NotFound {
                    src: escaped_lossy(&cleaned).into_owned(),
                })?;
            vec![(cleaned, target)]
        };

        // For each source: its name, what it leads to, and the entries below it it keeps.
        let groups: Vec<(String, Target, Kept)> = sources
            .into_iter()
            .filter(|(name, target)| {
                let is_file_root =
                    matches!(target, Target::Entry(i) if self.table.kind(*i) != EntryKind::Dir);
                let base = name.rsplit('/').next().unwrap_or(name);
                !(is_file_root && !exclude.is_empty() && exclude.matches_or_parent_matches(base))
            })
            .map(|(name, target)| {
                let range = self.below(target);
                let kept = self.not_excluded(target, range, exclude);
                (name, target, kept)
            })
            .collect();
        let total: usize = groups.iter().map(|(_, _, k)| k.len()).sum();
        let remember = total <= REMEMBER_LIMIT;

        let mut h = Hasher::new();
        h.field(b"rbuild-selection-v1");
        let mut roots = Vec::with_capacity(groups.len());
        for (name, target, kept) in groups {
            let (mut root_entry, own_digest) = match target {
                Target::Entry(i) => (self.entry(i), self.entry_digest(i)?),
                Target::Root => {
                    let e = self.root_entry().clone();
                    let d = entry_digest(&e, None);
                    (e, d)
                }
            };
            let real_prefix = match target {
                Target::Entry(_) => format!("{}/", root_entry.rel),
                Target::Root => String::new(),
            };
            let shown_prefix = if name == "." {
                String::new()
            } else {
                format!("{name}/")
            };
            root_entry.rel = name;
            h.field(b"root");
            if root_entry.kind == EntryKind::Dir {
                h.field(b"dir");
            } else {
                let base = root_entry.rel.rsplit('/').next().unwrap_or(&root_entry.rel);
                h.field(&unescape(base));
                h.field(own_digest.as_bytes());
            }
            // Hash in parallel batches, fold each batch in order. A remembered (small)
            // selection is one batch: no pause of the workers between batches.
            let batch_len = if remember {
                kept.len().max(1)
            } else {
                HASH_BATCH
            };
            let mut batch = Vec::with_capacity(batch_len.min(kept.len()));
            let mut positions = kept.iter().peekable();
            while positions.peek().is_some() {
                batch.clear();
                batch.extend(positions.by_ref().take(batch_len));
                let digests: Vec<Digest> = batch
                    .par_iter()
                    .map(|&i| {
                        if remember {
                            self.entry_digest(i)
                        } else {
                            self.entry_digest_unremembered(i)
                        }
                    })
                    .collect::<Result<_, _>>()?;
                for (&i, d) in batch.iter().zip(&digests) {
                    let below = self.table.rel(i).get(real_prefix.len()..).unwrap_or("");
                    h.field(&unescape(below));
                    h.field(d.as_bytes());
                }
            }
            drop(positions);
            roots.push(ViewRoot {
                entry: root_entry,
                real_prefix,
                shown_prefix,
                kept,
            });
        }
        Ok(SelectionView {
            roots,
            digest: h.finish(),
        })
    }

    /// Expands a wildcard source one segment at a time, looking through symlinked directories
    /// like BuildKit does: returns each match's name as written (sorted) and what it leads to.
    fn expand_wildcards(
        &self,
        src: &str,
        cleaned: &str,
    ) -> Result<Vec<(String, Target)>, ContextError> {
        // (name as the user sees it, where that name leads)
        let mut frontier: Vec<(String, Target)> = vec![(String::new(), Target::Root)];
        for segment in cleaned.split('/') {
            let mut next = Vec::new();
            let glob = if has_wildcards(segment) {
                Some(
                    Glob::new(segment).map_err(|problem| ContextError::BadSourcePattern {
                        src: escaped_lossy(src).into_owned(),
                        problem,
                    })?,
                )
            } else {
                None
            };
            for (name, target) in frontier {
                let dir_rel = match target {
                    Target::Root => String::new(),
                    Target::Entry(i) if self.table.kind(i) == EntryKind::Dir => {
                        self.table.rel(i).to_string()
                    }
                    Target::Entry(_) => continue,
                };
                let children: Vec<String> = match &glob {
                    Some(g) => self
                        .children(target)
                        .filter(|child| g.matches(child))
                        .map(str::to_string)
                        .collect(),
                    None => vec![segment.to_string()],
                };
                for child in children {
                    let real = join(&dir_rel, &child);
                    let shown = join(&name, &child);
                    match self.resolve(&real)? {
                        Some(t) => next.push((shown, t)),
                        None if glob.is_some() => {
                            return Err(ContextError::NotFound {
                                src: escaped_lossy(&shown).into_owned(),
                            });
                        }
                        None => {}
                    }
                }
            }
            frontier = next;
        }
        frontier.sort_by(|a, b| walk_order(&a.0, &b.0));
        Ok(frontier)
    }

    /// The indices in `range` (the entries below `target`) that `exclude` leaves in.
    fn not_excluded(&self, target: Target, range: Range<usize>, exclude: &PatternMatcher) -> Kept {
        if exclude.is_empty() {
            return Kept::All(range);
        }
        let skip = match target {
            Target::Root => 0,
            Target::Entry(i) => self.table.rel(i).len() + 1,
        };
        Kept::Some(
            range
                .filter(|&i| {
                    let rel = self.table.rel(i).get(skip..).unwrap_or("");
                    !exclude.matches_or_parent_matches(rel)
                        || (self.table.kind(i) == EntryKind::Dir
                            && exclude.exception_could_match_below(rel))
                })
                .collect(),
        )
    }

    /// The names of the entries directly inside a resolved directory.
    fn children(&self, dir: Target) -> impl Iterator<Item = &str> {
        let (range, skip) = match dir {
            Target::Root => (self.below(dir), 0),
            Target::Entry(i) => (self.below(dir), self.table.rel(i).len() + 1),
        };
        range
            .filter_map(move |i| self.table.rel(i).get(skip..))
            .filter(|rest| !rest.contains('/'))
    }

    /// The entries strictly below a resolved directory (none for a file).
    fn below(&self, target: Target) -> Range<usize> {
        match target {
            Target::Root => 0..self.table.len(),
            Target::Entry(i) if self.table.kind(i) == EntryKind::Dir => {
                // Entries below `dir` are contiguous after it: find the first that is not.
                let dir = self.table.rel(i);
                let inside = |j: usize| {
                    self.table
                        .rel(j)
                        .strip_prefix(dir)
                        .is_some_and(|rest| rest.starts_with('/'))
                };
                let (mut lo, mut hi) = (i + 1, self.table.len());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if inside(mid) {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                i + 1..lo
            }
            Target::Entry(i) => i + 1..i + 1,
        }
    }
}

/// Joins two relative path parts, either of which may be empty.
fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}
