//! What a COPY/ADD source selects from a [`BuildContext`], and the digest that keys the copy.

use rbuild_types::{Digest, Hasher};

use crate::clean::clean_within_root;
use crate::context::BuildContext;
use crate::entry::{ContextEntry, EntryKind};
use crate::error::ContextError;
use crate::glob::{has_wildcards, Glob};
use crate::hash::entry_digest;

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
    pub fn select(&self, src: &str) -> Result<Selection, ContextError> {
        let cleaned = clean_within_root(src);
        let root_indices: Vec<Option<usize>> = if cleaned == "." {
            vec![None]
        } else if has_wildcards(&cleaned) {
            let glob = Glob::new(&cleaned).map_err(|problem| ContextError::BadSourcePattern {
                src: src.to_string(),
                problem,
            })?;
            self.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| glob.matches(&e.rel))
                .map(|(i, _)| Some(i))
                .collect()
        } else {
            match self.index.get(&cleaned) {
                Some(&i) => vec![Some(i)],
                None => return Err(ContextError::NotFound { src: cleaned }),
            }
        };

        // For each root: its entry index (None = context root) and the range of entries below.
        let mut groups: Vec<(Option<usize>, std::ops::Range<usize>)> = Vec::new();
        for root in root_indices {
            let range = match root {
                None => 0..self.entries.len(),
                Some(i) if self.entries[i].kind == EntryKind::Dir => {
                    let prefix = format!("{}/", self.entries[i].rel);
                    let end = self.entries[i + 1..]
                        .iter()
                        .position(|e| !e.rel.starts_with(&prefix))
                        .map_or(self.entries.len(), |p| i + 1 + p);
                    i + 1..end
                }
                Some(i) => i + 1..i + 1,
            };
            groups.push((root, range));
        }

        let needed: Vec<usize> = groups
            .iter()
            .flat_map(|(root, range)| root.iter().copied().chain(range.clone()))
            .collect();
        self.hash_all(&needed)?;

        let mut h = Hasher::new();
        h.field(b"rbuild-selection-v1");
        let mut roots = Vec::with_capacity(groups.len());
        let mut entries = Vec::new();
        for (root, range) in groups {
            let root_entry = match root {
                Some(i) => &self.entries[i],
                None => self.root_entry(),
            };
            h.field(b"root");
            if root_entry.kind == EntryKind::Dir {
                h.field(b"dir");
            } else {
                let name = root_entry.rel.rsplit('/').next().unwrap_or(&root_entry.rel);
                h.field(name.as_bytes());
                let d = match root {
                    Some(i) => self.entry_digest(i)?,
                    None => entry_digest(root_entry, None),
                };
                h.field(d.as_bytes());
            }
            let strip = match root {
                Some(_) => root_entry.rel.len() + 1,
                None => 0,
            };
            for i in range {
                let e = &self.entries[i];
                h.field(e.rel.get(strip..).unwrap_or("").as_bytes());
                h.field(self.entry_digest(i)?.as_bytes());
                entries.push(e.clone());
            }
            roots.push(root_entry.clone());
        }
        Ok(Selection {
            roots,
            entries,
            digest: h.finish(),
        })
    }
}
