//! The one resolver of paths inside an image: every path an instruction reads or writes in an
//! image (COPY/ADD destinations and their parents, WORKDIR, `COPY --from` sources, RUN mount
//! targets, the `/etc/passwd` and `/etc/group` of `--chown` and USER) is resolved here, the way
//! BuildKit resolves them (continuity's `fs.RootPath`, used by fsutil's copy):
//!
//! - the path is taken from the image root whatever it starts with;
//! - symlinks are followed inside the image: an absolute target restarts at the image root and
//!   `..` never climbs above it, so nothing resolves to a host path outside the image;
//! - `..` applies to the path resolved so far (after following a symlink), as the kernel does;
//! - a component that does not exist is kept as a plain name and resolution goes on below it
//!   (a later `..` can come back to existing directories);
//! - the last component is followed only when asked ([`Follow::Last`]);
//! - more than [`MAX_LINKS`] symlinks is an error (a loop), as is a component below a
//!   non-directory.
//!
//! The filesystem is abstract ([`Tree`]): a stack of layers (`rbuild_cache::merged`), or a
//! directory on the host (the sandbox's root filesystem). This module does no I/O itself.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed while resolving one path before giving up (continuity's limit, which
/// BuildKit applies; Linux's own is 40).
pub const MAX_LINKS: usize = 255;

/// A filesystem the resolver walks, one directory entry at a time.
pub trait Tree {
    /// A handle on an entry of the tree (what a caller needs to use it afterwards).
    type Entry;

    /// The root directory.
    fn root(&self) -> io::Result<Self::Entry>;

    /// What `name` (one component, never `.` or `..`) is in directory `dir`, without
    /// following it.
    fn child(&self, dir: &Self::Entry, name: &OsStr) -> io::Result<Node<Self::Entry>>;
}

/// One entry of a [`Tree`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node<E> {
    /// Nothing has that name.
    Missing,
    /// A directory.
    Dir(E),
    /// A symbolic link, with its target.
    Symlink(PathBuf, E),
    /// Anything else: a regular file, a device, a FIFO, a socket.
    Other(E),
}

impl<E> Node<E> {
    /// The entry, unless nothing is there.
    pub fn entry(&self) -> Option<&E> {
        match self {
            Node::Missing => None,
            Node::Dir(e) | Node::Symlink(_, e) | Node::Other(e) => Some(e),
        }
    }

    /// The entry, unless nothing is there.
    pub fn into_entry(self) -> Option<E> {
        match self {
            Node::Missing => None,
            Node::Dir(e) | Node::Symlink(_, e) | Node::Other(e) => Some(e),
        }
    }
}

/// Whether the last component is followed when it is a symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Follow it (the entry a link points to).
    Last,
    /// Leave it (the link itself).
    NotLast,
}

/// A resolved path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved<E> {
    /// The path with every symlink resolved (but a last one that was not followed): absolute,
    /// normal, inside the image.
    pub path: PathBuf,
    /// What is at `path`.
    pub node: Node<E>,
}

/// Why a path could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("too many levels of symbolic links resolving {path} in the image")]
    TooManyLinks { path: PathBuf },
    #[error("resolving {path} in the image: {at} is not a directory")]
    NotADirectory { path: PathBuf, at: PathBuf },
    #[error("resolving {path} in the image: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Resolves `path` in `tree` (see the module docs).
pub fn resolve<T: Tree>(
    tree: &T,
    path: &Path,
    follow: Follow,
) -> Result<Resolved<T::Entry>, ResolveError> {
    let io_err = |source| ResolveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let root = tree.root().map_err(io_err)?;
    // The path resolved so far, one entry per component below the root.
    let mut stack: Vec<(OsString, Node<T::Entry>)> = Vec::new();
    let mut queue = components(path);
    let mut links = 0;
    while let Some(name) = queue.pop_front() {
        if name == ".." {
            stack.pop();
            continue;
        }
        let node = match stack.last() {
            None => tree.child(&root, &name).map_err(io_err)?,
            Some((_, Node::Dir(dir))) => tree.child(dir, &name).map_err(io_err)?,
            Some((_, Node::Missing)) => Node::Missing,
            Some((_, Node::Other(_) | Node::Symlink(..))) => {
                return Err(ResolveError::NotADirectory {
                    path: path.to_path_buf(),
                    at: joined(&stack),
                })
            }
        };
        match node {
            Node::Symlink(target, _) if !queue.is_empty() || follow == Follow::Last => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(ResolveError::TooManyLinks {
                        path: path.to_path_buf(),
                    });
                }
                if target.is_absolute() {
                    stack.clear();
                }
                for c in components(&target).into_iter().rev() {
                    queue.push_front(c);
                }
            }
            node => stack.push((name, node)),
        }
    }
    let path = joined(&stack);
    let node = match stack.pop() {
        Some((_, node)) => node,
        None => Node::Dir(root),
    };
    Ok(Resolved { path, node })
}

/// The names of `path` in order: normal components and `..` (root and `.` dropped), as they
/// are resolved one by one.
pub fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// The absolute path of the resolved components.
fn joined<D>(stack: &[(OsString, Node<D>)]) -> PathBuf {
    let mut out = PathBuf::from("/");
    out.extend(stack.iter().map(|(name, _)| name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// An in-memory tree: absolute path → entry (`None` = directory, `Some(Ok(target))` =
    /// symlink, `Some(Err(()))` = regular file). Directory handles are their paths.
    struct Mem(BTreeMap<PathBuf, Option<Result<PathBuf, ()>>>);

    impl Mem {
        fn new(entries: &[(&str, &str)]) -> Mem {
            let mut map = BTreeMap::new();
            for (path, kind) in entries {
                let v = match *kind {
                    "dir" => None,
                    "file" => Some(Err(())),
                    target => Some(Ok(PathBuf::from(target))),
                };
                map.insert(PathBuf::from(path), v);
            }
            Mem(map)
        }
    }

    impl Tree for Mem {
        type Entry = PathBuf;
        fn root(&self) -> io::Result<PathBuf> {
            Ok(PathBuf::from("/"))
        }
        fn child(&self, dir: &PathBuf, name: &OsStr) -> io::Result<Node<PathBuf>> {
            let p = dir.join(name);
            Ok(match self.0.get(&p) {
                None => Node::Missing,
                Some(None) => Node::Dir(p),
                Some(Some(Ok(t))) => Node::Symlink(t.clone(), p),
                Some(Some(Err(()))) => Node::Other(p),
            })
        }
    }

    fn merged_usr() -> Mem {
        Mem::new(&[
            ("/usr", "dir"),
            ("/usr/bin", "dir"),
            ("/usr/bin/sh", "dash"),
            ("/usr/bin/dash", "file"),
            ("/usr/lib", "dir"),
            ("/bin", "usr/bin"),
            ("/lib", "usr/lib"),
            ("/lib64", "/lib"),
            ("/srv", "dir"),
            ("/srv/data", "dir"),
            ("/data", "/srv/data"),
            ("/up", "../../../../usr"),
            ("/w", "dir"),
            ("/w/up2", "../../.."),
            ("/etc", "dir"),
            ("/etc/passwd", "passwd.real"),
            ("/etc/passwd.real", "file"),
            ("/loop1", "/loop2"),
            ("/loop2", "loop1"),
            ("/self", "self"),
            ("/dangling", "/nonexist/y"),
            ("/file", "file"),
        ])
    }

    fn res(path: &str, follow: Follow) -> Resolved<PathBuf> {
        resolve(&merged_usr(), Path::new(path), follow).unwrap()
    }

    fn to(path: &str) -> PathBuf {
        res(path, Follow::Last).path
    }

    #[test]
    fn components_keep_parent_markers() {
        let c: Vec<_> = components(Path::new("/a/./../b")).into_iter().collect();
        assert_eq!(c, ["a", "..", "b"]);
    }

    #[test]
    fn follows_links_to_links_and_keeps_missing_names() {
        assert_eq!(to("/bin/tool"), Path::new("/usr/bin/tool"));
        assert_eq!(to("/bin"), Path::new("/usr/bin"));
        assert_eq!(to("/lib64/x"), Path::new("/usr/lib/x"));
        assert_eq!(to("/bin/sh"), Path::new("/usr/bin/dash"));
        assert_eq!(to("bin/sh"), Path::new("/usr/bin/dash"));
        assert_eq!(to("/data/sub/new"), Path::new("/srv/data/sub/new"));
        assert_eq!(to("/etc/passwd"), Path::new("/etc/passwd.real"));
        assert_eq!(to("/dangling"), Path::new("/nonexist/y"));
        assert_eq!(to("/"), Path::new("/"));
        assert_eq!(res("/bin/tool", Follow::Last).node, Node::Missing);
        assert_eq!(
            res("/bin/sh", Follow::Last).node,
            Node::Other(PathBuf::from("/usr/bin/dash"))
        );
        assert_eq!(
            res("/bin", Follow::Last).node,
            Node::Dir(PathBuf::from("/usr/bin"))
        );
    }

    #[test]
    fn the_last_link_is_kept_when_asked() {
        let r = res("/bin/sh", Follow::NotLast);
        assert_eq!(r.path, Path::new("/usr/bin/sh"));
        assert_eq!(
            r.node,
            Node::Symlink(PathBuf::from("dash"), PathBuf::from("/usr/bin/sh"))
        );
        assert_eq!(res("/bin", Follow::NotLast).path, Path::new("/bin"));
    }

    #[test]
    fn dot_dot_never_leaves_the_root() {
        assert_eq!(to("/../../../etc"), Path::new("/etc"));
        assert_eq!(to("/up/bin"), Path::new("/usr/bin"));
        assert_eq!(to("/w/up2/y"), Path::new("/y"));
        // `..` applies after the link is followed: /bin/.. is /usr.
        assert_eq!(to("/bin/../lib"), Path::new("/usr/lib"));
        // Below a missing directory, `..` comes back to existing ones.
        assert_eq!(to("/nope/../bin/x"), Path::new("/usr/bin/x"));
    }

    #[test]
    fn loops_and_files_in_the_middle_are_errors() {
        for p in ["/loop1", "/loop2/x", "/self/x"] {
            let e = resolve(&merged_usr(), Path::new(p), Follow::Last).unwrap_err();
            assert!(matches!(e, ResolveError::TooManyLinks { .. }), "{p}: {e}");
            assert!(e.to_string().contains(p), "{e}");
        }
        // A loop is an error even when the last link is not followed, if it is in the middle.
        assert!(resolve(&merged_usr(), Path::new("/loop1"), Follow::NotLast).is_ok());
        let e = resolve(&merged_usr(), Path::new("/file/x"), Follow::Last).unwrap_err();
        assert!(
            matches!(&e, ResolveError::NotADirectory { at, .. } if at == Path::new("/file")),
            "{e}"
        );
    }

    /// `/l0 -> l1 -> … -> l<n>`, with `/l<n>` a directory.
    fn chain(n: usize) -> Mem {
        let mut entries = vec![(format!("/l{n}"), "dir".to_string())];
        for i in 0..n {
            entries.push((format!("/l{i}"), format!("l{}", i + 1)));
        }
        let refs: Vec<(&str, &str)> = entries
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        Mem::new(&refs)
    }

    #[test]
    fn a_chain_of_max_links_resolves_and_one_more_fails() {
        let r = resolve(&chain(MAX_LINKS), Path::new("/l0/x"), Follow::Last).unwrap();
        assert_eq!(r.path, PathBuf::from(format!("/l{MAX_LINKS}/x")));
        let e = resolve(&chain(MAX_LINKS + 1), Path::new("/l0/x"), Follow::Last).unwrap_err();
        assert!(matches!(e, ResolveError::TooManyLinks { .. }), "{e}");
    }
}
