//! A read-only merged view over a stack of snapshot directories (bottom first), with
//! overlayfs semantics, computed in process (no mount, no privileges):
//! - the topmost layer that has a name wins;
//! - a whiteout hides the name in every lower layer;
//! - a directory merges with lower directories of the same name, unless it is opaque (then
//!   lower contents are hidden) or a lower layer has a non-directory there (which stops the
//!   merge, as overlayfs does);
//! - a non-directory hides everything below it.
//!
//! Paths are absolute image paths. Symlinks in intermediate components are resolved inside
//! the image root (absolute targets restart at the image root, `..` stops at it), so a view
//! never reaches host files outside its layers. The final component of `lookup` is not
//! followed. Entry paths are reported as asked (lexically normalised), not as resolved.

use std::collections::{BTreeSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::path::{Component, Path, PathBuf};

use crate::error::{io_err, CacheError};
use crate::overlay::{is_opaque, is_whiteout};

/// Linux's limit on symlinks followed while resolving one path.
const MAX_SYMLINKS: usize = 40;

/// A merged view of layers, bottom first.
#[derive(Clone, Debug)]
pub struct MergedView {
    layers: Vec<PathBuf>,
}

/// One path of the merged view.
#[derive(Clone, Debug)]
pub struct MergedEntry {
    /// Absolute path in the image.
    pub path: PathBuf,
    /// The file on the host that wins for this path (the topmost layer's).
    pub host_path: PathBuf,
    /// `symlink_metadata` of `host_path`.
    pub metadata: Metadata,
}

/// A name resolved in one directory: the winner, and for a directory the host directories
/// that merge into it, topmost first.
struct Found {
    host_path: PathBuf,
    metadata: Metadata,
    dirs: Vec<PathBuf>,
}

impl MergedView {
    /// A view of `layers`, bottom first.
    pub fn new(layers: Vec<PathBuf>) -> Self {
        MergedView { layers }
    }

    /// The entry at `path`, not following a final symlink; `None` if it does not exist (or a
    /// component before the last is not a directory).
    pub fn lookup(&self, path: &Path) -> Result<Option<MergedEntry>, CacheError> {
        let shown = normalise(path)?;
        Ok(self.resolve(path, false)?.map(|f| MergedEntry {
            path: shown,
            host_path: f.host_path,
            metadata: f.metadata,
        }))
    }

    /// The merged entries of directory `dir` (a final symlink is followed), sorted by name.
    pub fn read_dir(&self, dir: &Path) -> Result<Vec<MergedEntry>, CacheError> {
        let shown = normalise(dir)?;
        let found = self.open_dir(dir)?;
        Ok(self
            .list(&found.dirs, &shown)?
            .into_iter()
            .map(|(e, _)| e)
            .collect())
    }

    /// Every entry below `dir` (not `dir` itself), pre-order, each directory's entries sorted
    /// by name. Symlinks are listed, not followed.
    pub fn walk(&self, dir: &Path) -> Result<Vec<MergedEntry>, CacheError> {
        let shown = normalise(dir)?;
        let found = self.open_dir(dir)?;
        let mut out = Vec::new();
        self.walk_into(&found.dirs, &shown, &mut out)?;
        Ok(out)
    }

    fn walk_into(
        &self,
        dirs: &[PathBuf],
        shown: &Path,
        out: &mut Vec<MergedEntry>,
    ) -> Result<(), CacheError> {
        for (entry, sub) in self.list(dirs, shown)? {
            let is_dir = entry.metadata.is_dir();
            let path = entry.path.clone();
            out.push(entry);
            if is_dir {
                self.walk_into(&sub, &path, out)?;
            }
        }
        Ok(())
    }

    fn open_dir(&self, dir: &Path) -> Result<Found, CacheError> {
        match self.resolve(dir, true)? {
            None => Err(CacheError::NotFound {
                path: dir.to_path_buf(),
            }),
            Some(f) if !f.metadata.is_dir() => Err(CacheError::NotADirectory {
                path: dir.to_path_buf(),
            }),
            Some(f) => Ok(f),
        }
    }

    /// The merged listing of a directory made of host `dirs` (topmost first).
    fn list(
        &self,
        dirs: &[PathBuf],
        shown: &Path,
    ) -> Result<Vec<(MergedEntry, Vec<PathBuf>)>, CacheError> {
        let mut names = BTreeSet::new();
        for d in dirs {
            for entry in fs::read_dir(d).map_err(io_err("read directory", d))? {
                names.insert(entry.map_err(io_err("read directory", d))?.file_name());
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(f) = child(dirs, &name)? {
                out.push((
                    MergedEntry {
                        path: shown.join(&name),
                        host_path: f.host_path,
                        metadata: f.metadata,
                    },
                    f.dirs,
                ));
            }
        }
        Ok(out)
    }

    /// The root directory: every layer's root, topmost first.
    fn root(&self) -> Result<Option<Found>, CacheError> {
        let dirs: Vec<PathBuf> = self.layers.iter().rev().cloned().collect();
        let Some(top) = dirs.first() else {
            return Ok(None);
        };
        let metadata = fs::symlink_metadata(top).map_err(io_err("stat layer", top))?;
        Ok(Some(Found {
            host_path: top.clone(),
            metadata,
            dirs,
        }))
    }

    /// Resolves `path` component by component, following symlinks in intermediate components
    /// (and in the last one if `follow_last`) within the image root.
    fn resolve(&self, path: &Path, follow_last: bool) -> Result<Option<Found>, CacheError> {
        if !path.is_absolute() {
            return Err(CacheError::RelativePath {
                path: path.to_path_buf(),
            });
        }
        let Some(root) = self.root()? else {
            return Ok(None);
        };
        // The directories from the root to the current one; never empty.
        let mut stack: Vec<Found> = vec![root];
        let mut queue: VecDeque<OsString> = components(path);
        let mut links = 0;
        while let Some(name) = queue.pop_front() {
            if name == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let Some(cur) = stack.last() else {
                return Ok(None);
            };
            let Some(found) = child(&cur.dirs, &name)? else {
                return Ok(None);
            };
            let last = queue.is_empty();
            if found.metadata.file_type().is_symlink() && (!last || follow_last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(CacheError::TooManySymlinks {
                        path: path.to_path_buf(),
                    });
                }
                let target = fs::read_link(&found.host_path)
                    .map_err(io_err("read symlink", &found.host_path))?;
                if target.is_absolute() {
                    stack.truncate(1);
                }
                for c in components(&target).into_iter().rev() {
                    queue.push_front(c);
                }
                continue;
            }
            if last {
                return Ok(Some(found));
            }
            if !found.metadata.is_dir() {
                return Ok(None);
            }
            stack.push(found);
        }
        Ok(stack.pop())
    }
}

/// Looks `name` up in a directory made of host `dirs` (topmost first), applying whiteouts,
/// opaque directories and non-directory shadowing.
fn child(dirs: &[PathBuf], name: &OsStr) -> Result<Option<Found>, CacheError> {
    let mut found: Option<Found> = None;
    for d in dirs {
        let p = d.join(name);
        let md = match fs::symlink_metadata(&p) {
            Ok(md) => md,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                continue
            }
            Err(e) => return Err(io_err("stat", p)(e)),
        };
        if is_whiteout(&md) {
            break;
        }
        let is_dir = md.is_dir();
        match found.as_mut() {
            None => {
                let opaque = is_dir && is_opaque(&p);
                let dirs = if is_dir { vec![p.clone()] } else { Vec::new() };
                found = Some(Found {
                    host_path: p,
                    metadata: md,
                    dirs,
                });
                if !is_dir || opaque {
                    break;
                }
            }
            Some(f) => {
                // Below a directory only directories merge; anything else ends the merge.
                if !is_dir || f.dirs.is_empty() {
                    break;
                }
                let opaque = is_opaque(&p);
                f.dirs.push(p);
                if opaque {
                    break;
                }
            }
        }
    }
    Ok(found)
}

/// The names of `path` to resolve, in order: normal components and `..`; root and `.` dropped.
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// `path` made absolute-normalised lexically (`.` dropped, `..` applied, never above `/`).
fn normalise(path: &Path) -> Result<PathBuf, CacheError> {
    if !path.is_absolute() {
        return Err(CacheError::RelativePath {
            path: path.to_path_buf(),
        });
    }
    let mut out = PathBuf::from("/");
    for c in components(path) {
        if c == ".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_is_lexical_and_clamped() {
        for (input, want) in [
            ("/", "/"),
            ("/a/./b/", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../x", "/x"),
            ("//a//b", "/a/b"),
        ] {
            assert_eq!(
                normalise(Path::new(input)).unwrap(),
                Path::new(want),
                "{input}"
            );
        }
        assert!(matches!(
            normalise(Path::new("a/b")),
            Err(CacheError::RelativePath { .. })
        ));
    }

    #[test]
    fn components_keep_parent_markers() {
        let c: Vec<_> = components(Path::new("/a/./../b")).into_iter().collect();
        assert_eq!(c, ["a", "..", "b"]);
    }
}
