//! Resolving a COPY source path inside the context the way BuildKit's COPY does: symlinks in
//! the path (parent components and the final one) are followed, always scoped to the context
//! root — an absolute target is relative to the root and `..` cannot climb above it. Excluded
//! paths are invisible here too, so a link into an excluded path resolves to nothing.

use crate::clean::clean_within_root;
use crate::context::BuildContext;
use crate::entry::EntryKind;
use crate::error::ContextError;

/// Linux's limit on symlinks followed while resolving one path.
const MAX_HOPS: usize = 40;

/// Where a source path leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The context root itself.
    Root,
    /// `entries[i]`, never a symlink.
    Entry(usize),
}

impl BuildContext {
    /// Follows `rel` (cleaned, relative) to what it names; `Ok(None)` if nothing is there.
    pub(crate) fn resolve(&self, rel: &str) -> Result<Option<Target>, ContextError> {
        let mut pending: Vec<String> = components(rel).into_iter().rev().collect();
        let mut current = String::new();
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            let candidate = if current.is_empty() {
                comp
            } else {
                format!("{current}/{comp}")
            };
            let Some(i) = self.position(&candidate) else {
                return Ok(None);
            };
            match self.table.kind(i) {
                EntryKind::Symlink => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(ContextError::SymlinkLoop {
                            src: rbuild_types::bytes::escaped_lossy(rel).into_owned(),
                        });
                    }
                    let target = self.table.link(i).unwrap_or("");
                    let joined = if target.starts_with('/') || current.is_empty() {
                        target.to_string()
                    } else {
                        format!("{current}/{target}")
                    };
                    let resolved = clean_within_root(&joined);
                    pending.extend(components(&resolved).into_iter().rev());
                    current = String::new();
                }
                EntryKind::Dir => current = candidate,
                EntryKind::File if pending.is_empty() => current = candidate,
                EntryKind::File => return Ok(None),
            }
        }
        if current.is_empty() {
            return Ok(Some(Target::Root));
        }
        Ok(self.position(&current).map(Target::Entry))
    }
}

/// The segments of a cleaned relative path (`.` has none).
fn components(rel: &str) -> Vec<String> {
    rel.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
        .collect()
}
