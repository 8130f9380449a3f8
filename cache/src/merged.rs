//! A read-only merged view over a stack of snapshot directories (bottom first), with
//! overlayfs semantics, computed in process (no mount, no privileges):
//! - the topmost layer that has a name wins;
//! - a whiteout hides the name in every lower layer;
//! - a directory merges with lower directories of the same name, unless it is opaque (then
//!   lower contents are hidden) or a lower layer has a non-directory there (which stops the
//!   merge, as overlayfs does);
//! - a non-directory hides everything below it.
//!
//! Paths are absolute image paths, resolved by the one resolver of image paths
//! ([`rbuild_types::root_path`]): symlinks are followed inside the image root (absolute
//! targets restart at the image root, `..` stops at it), so a view never reaches host files
//! outside its layers. The final component of `lookup` is not followed (that of
//! `lookup_followed` is). Entry paths are reported as asked (lexically normalised), not as
//! resolved; `resolve_path` tells where a path resolves to.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};

use rbuild_types::root_path::{self, Follow, Node, Resolved, Tree};

use crate::error::{io_err, CacheError};
use crate::overlay::{is_opaque, is_whiteout};

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
#[derive(Clone, Debug)]
pub struct Found {
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
        Ok(self
            .found(path, Follow::NotLast)?
            .map(|(_, f)| MergedEntry {
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
        match self.found(dir, Follow::Last)?.map(|(_, f)| f) {
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
            let f = child(dirs, &name).map_err(io_err("stat", shown.join(&name)))?;
            if let Some(f) = f {
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

    /// Resolves `path` through [`rbuild_types::root_path`] (the image's symlinks, inside its
    /// root). `None` for an empty view.
    fn resolve(&self, path: &Path, follow: Follow) -> Result<Option<Resolved<Found>>, CacheError> {
        if !path.is_absolute() {
            return Err(CacheError::RelativePath {
                path: path.to_path_buf(),
            });
        }
        if self.layers.is_empty() {
            return Ok(None);
        }
        root_path::resolve(self, path, follow)
            .map(Some)
            .map_err(CacheError::from)
    }

    /// The entry `path` resolves to when every symlink in it is followed (the last one too),
    /// reported under the path asked (lexically normalised); `None` when nothing is there or a
    /// component before the last is not a directory.
    pub fn lookup_followed(&self, path: &Path) -> Result<Option<MergedEntry>, CacheError> {
        let shown = normalise(path)?;
        Ok(self.found(path, Follow::Last)?.map(|(_, f)| MergedEntry {
            path: shown,
            host_path: f.host_path,
            metadata: f.metadata,
        }))
    }

    /// Where `path` resolves to in the image, the last component followed or not: the path
    /// with its symlinks resolved, inside the image root (see [`rbuild_types::root_path`]),
    /// whether or not something is there. A loop, or a component below a non-directory, is an
    /// error.
    pub fn resolve_path(&self, path: &Path, follow: Follow) -> Result<PathBuf, CacheError> {
        match self.resolve(path, follow)? {
            Some(r) => Ok(r.path),
            None => normalise(path),
        }
    }

    /// Where `path` resolves to with directory `base` (a resolved image path) as its root:
    /// absolute symlink targets restart at `base` and `..` stops there, as in a chroot into
    /// `base` (Docker's untar, which ADD runs chrooted into its destination).
    pub fn resolve_path_below(
        &self,
        base: &Path,
        path: &Path,
        follow: Follow,
    ) -> Result<PathBuf, CacheError> {
        let base_dir = match self.found(base, Follow::Last)? {
            Some((_, f)) if f.metadata.is_dir() => f,
            Some(_) => {
                return Err(CacheError::NotADirectory {
                    path: base.to_path_buf(),
                })
            }
            None => {
                return Err(CacheError::NotFound {
                    path: base.to_path_buf(),
                })
            }
        };
        let below = Below {
            view: self,
            base: base_dir,
        };
        let r = root_path::resolve(&below, &Path::new("/").join(path), follow)?;
        Ok(base.join(r.path.strip_prefix("/").unwrap_or(&r.path)))
    }

    /// The same view with `top` as a new topmost layer (a file op's layer being written, so
    /// that paths resolve through what the op already wrote).
    pub fn with_top(&self, top: &Path) -> MergedView {
        let mut layers = self.layers.clone();
        layers.push(top.to_path_buf());
        MergedView { layers }
    }

    /// The resolved path and what is there; `None` when nothing is (a component below a
    /// non-directory counts as nothing).
    fn found(&self, path: &Path, follow: Follow) -> Result<Option<(PathBuf, Found)>, CacheError> {
        match self.resolve(path, follow) {
            Ok(Some(r)) => Ok(r.node.into_entry().map(|f| (r.path, f))),
            Ok(None) | Err(CacheError::NotADirectory { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Tree for MergedView {
    type Entry = Found;

    /// The root directory: every layer's root, topmost first.
    fn root(&self) -> std::io::Result<Found> {
        let dirs: Vec<PathBuf> = self.layers.iter().rev().cloned().collect();
        let top = dirs
            .first()
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        let metadata = fs::symlink_metadata(&top)?;
        Ok(Found {
            host_path: top,
            metadata,
            dirs,
        })
    }

    fn child(&self, dir: &Found, name: &OsStr) -> std::io::Result<Node<Found>> {
        let Some(f) = child(&dir.dirs, name)? else {
            return Ok(Node::Missing);
        };
        let ft = f.metadata.file_type();
        Ok(if ft.is_dir() {
            Node::Dir(f)
        } else if ft.is_symlink() {
            Node::Symlink(fs::read_link(&f.host_path)?, f)
        } else {
            Node::Other(f)
        })
    }
}

/// A view rooted at one of its directories (see [`MergedView::resolve_path_below`]).
struct Below<'a> {
    view: &'a MergedView,
    base: Found,
}

impl Tree for Below<'_> {
    type Entry = Found;

    fn root(&self) -> std::io::Result<Found> {
        Ok(self.base.clone())
    }

    fn child(&self, dir: &Found, name: &OsStr) -> std::io::Result<Node<Found>> {
        self.view.child(dir, name)
    }
}

/// Looks `name` up in a directory made of host `dirs` (topmost first), applying whiteouts,
/// opaque directories and non-directory shadowing.
fn child(dirs: &[PathBuf], name: &OsStr) -> std::io::Result<Option<Found>> {
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
            Err(e) => return Err(e),
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

/// `path` made absolute-normalised lexically (`.` dropped, `..` applied, never above `/`).
fn normalise(path: &Path) -> Result<PathBuf, CacheError> {
    if !path.is_absolute() {
        return Err(CacheError::RelativePath {
            path: path.to_path_buf(),
        });
    }
    let mut out = PathBuf::from("/");
    for c in root_path::components(path) {
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
}
