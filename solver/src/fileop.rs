//! File ops (COPY, ADD of local files, WORKDIR's mkdir, heredoc files), run in-process.
//!
//! A file op writes only the *changes* into a fresh directory in overlayfs upper-dir format,
//! which becomes the vertex's new layer. Directories that the changes need and that already
//! exist below keep their existing metadata (so the layer does not alter them); directories that
//! do not exist are created `0755`, owned by the `--chown` owner or root.
//!
//! Paths in the image resolve as BuildKit's copy resolves them (fsutil over continuity's
//! `RootPath`), through the one resolver of image paths ([`rbuild_types::root_path`]) over the
//! layers below *and* what this op already wrote: a destination follows the image's symlinks,
//! its last component included (`COPY tool /bin/` on a merged-/usr base writes
//! `/usr/bin/tool`, and the `/bin` link stays); a source of another stage is followed too.
//! Every path written below the upper dir is such a resolved path, so nothing is written
//! through a symlink on the host. Inside a copied directory tree, names are not followed: a
//! directory landing on a non-directory is an error ("cannot copy to non-directory"), as is a
//! file landing on a directory ("cannot replace to directory … with file"), as in BuildKit.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::UtimensatFlags;
use nix::sys::time::TimeSpec;
use rbuild_cache::merged::{MergedEntry, MergedView};
use rbuild_cache::overlay::copy_content_xattrs;
use rbuild_context::dockerignore::PatternMatcher;
use rbuild_context::{
    has_wildcards, rel_path, BuildContext, ContextEntry, ContextError, EntryKind, FileStamp, Glob,
    SelectionView,
};
use rbuild_graph::{CopyAction, FileAction, FileMode, MkdirAction, MkfileAction};
use rbuild_types::bytes::escape;
use rbuild_types::root_path::Follow;
use rbuild_types::Privileges;

use rayon::prelude::*;

use crate::owner::{resolve_owner, Owner, OwnerError};

mod copier;
pub(crate) mod reuse;
pub(crate) mod write;

use copier::Copier;
pub use reuse::CopyReuse;
use write::FileAttrs;

/// Regular files of a context copy written per parallel batch (≈ 400 bytes each in memory
/// with their paths: 1.6 MB a batch; 16Ki cost 6.5 MB of a million-file build's peak).
const COPY_BATCH: usize = 4_096;

/// Why a file op failed.
#[derive(Debug, thiserror::Error)]
pub enum FileOpError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to compute cache key: \"{src}\": not found")]
    NotFound { src: String },
    #[error(transparent)]
    Context(#[from] rbuild_context::ContextError),
    #[error(transparent)]
    Cache(#[from] rbuild_cache::CacheError),
    #[error(transparent)]
    Owner(#[from] OwnerError),
    #[error("copying {from} to {to}: {source}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("destination {dest:?} escapes the root filesystem")]
    Escape { dest: String },
    #[error("mkdir {path}: not a directory")]
    NotADirectory { path: PathBuf },
    #[error("cannot copy to non-directory: {path}")]
    CopyToNonDirectory { path: PathBuf },
    #[error("cannot replace to directory {path} with file")]
    ReplaceDirectory { path: PathBuf },
    #[error("ADD {path}: reading the archive: {source}")]
    Archive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("ADD {path}: archive entry {entry:?} refused: {why}")]
    ArchiveEntry {
        path: PathBuf,
        entry: String,
        why: String,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FileOpError + '_ {
    move |source| FileOpError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a copy reads from.
pub enum CopySource<'a> {
    /// A build context, with the selection already made for the key (a view over the
    /// context's table: its entries are built one at a time while copying).
    Context(&'a BuildContext, &'a SelectionView),
    /// The merged filesystem of another vertex.
    Filesystem(&'a MergedView),
}

/// Applies file actions, writing the resulting layer into `upper`.
///
/// Directory times are settled once all actions ran ([`FileOpRunner::finish`]): adding entries
/// to a directory bumps its mtime to the wall clock, which would make identical inputs give
/// different layers. A directory copied from a source keeps the source's mtime, one that exists
/// below keeps its existing mtime, and one this op creates gets the Unix epoch.
pub struct FileOpRunner<'a> {
    /// The filesystem the actions modify (read-only view of the layers below).
    pub dest: &'a MergedView,
    /// Empty directory that receives the layer.
    pub upper: &'a Path,
    /// `dest` with `upper` on top: what image paths resolve through.
    live: MergedView,
    /// Upper-dir directories and the (seconds, nanoseconds) mtime each must end with.
    dir_times: RefCell<Vec<(PathBuf, i64, i64)>>,
    /// Image directories this op created where nothing was below: nothing below them needs
    /// looking up in `dest`.
    fresh: RefCell<HashSet<PathBuf>>,
    /// rbuild's privileges: whether files can be given their owners.
    privileges: Privileges,
    /// An earlier run's files to link instead of copying, and the record of this one.
    reuse: Option<&'a CopyReuse>,
    /// Whether the upper dir's filesystem scans freed inodes on each allocation
    /// (`rbuild_cache::placement::slow_inode_reuse`).
    slow_inode_reuse: bool,
}

impl<'a> FileOpRunner<'a> {
    pub fn new(dest: &'a MergedView, upper: &'a Path, privileges: Privileges) -> Self {
        FileOpRunner {
            dest,
            upper,
            privileges,
            live: dest.with_top(upper),
            dir_times: RefCell::new(Vec::new()),
            fresh: RefCell::new(HashSet::new()),
            reuse: None,
            slow_inode_reuse: rbuild_cache::placement::slow_inode_reuse(upper),
        }
    }

    /// Copies from a context link what `reuse`'s donor has and are recorded in it.
    pub fn with_reuse(mut self, reuse: &'a CopyReuse) -> Self {
        self.reuse = Some(reuse);
        self
    }

    /// Gives `path` (not following a symlink) the owner `uid:gid` when this process can give
    /// files away; otherwise it keeps ours (a rootless build's are mapped to the caller).
    pub(crate) fn chown(&self, path: &Path, uid: u32, gid: u32) -> Result<(), FileOpError> {
        if !self.privileges.can_chown() {
            return Ok(());
        }
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err(path))
    }

    /// The owner a copied regular file is given ([`FileAttrs::owner`]): `uid:gid` when this
    /// process can give files away, else none (it keeps ours).
    pub(crate) fn file_owner(&self, uid: u32, gid: u32) -> Option<(u32, u32)> {
        self.privileges.can_chown().then_some((uid, gid))
    }

    /// Gives `target` the mode, owner and times of `meta`.
    fn copy_metadata(&self, meta: &fs::Metadata, target: &Path) -> Result<(), FileOpError> {
        set_mode(target, meta.mode() & 0o7777)?;
        self.chown(target, meta.uid(), meta.gid())?;
        set_mtime(target, meta)
    }

    /// Remembers the mtime a directory of the layer must end with (a later call wins).
    pub(crate) fn keep_dir_time(&self, upper_path: &Path, secs: i64, nsecs: i64) {
        self.dir_times
            .borrow_mut()
            .push((upper_path.to_path_buf(), secs, nsecs));
    }

    /// Sets every remembered directory time. Call after the last action.
    pub fn finish(&self) -> Result<(), FileOpError> {
        for (path, secs, nsecs) in self.dir_times.borrow().iter() {
            set_times(path, *secs, *nsecs)?;
        }
        Ok(())
    }

    pub fn apply(
        &self,
        action: &FileAction,
        source: Option<CopySource<'_>>,
    ) -> Result<(), FileOpError> {
        match (action, source) {
            (FileAction::Copy(copy), Some(src)) => self.copy(copy, src),
            (FileAction::Copy(copy), None) => Err(FileOpError::NotFound {
                src: copy.src.clone(),
            }),
            (FileAction::Mkdir(mkdir), _) => self.mkdir(mkdir),
            (FileAction::Mkfile(mkfile), _) => self.mkfile(mkfile),
        }
    }

    fn owner(&self, chown: &Option<String>) -> Result<Option<Owner>, FileOpError> {
        match chown {
            Some(spec) => Ok(Some(resolve_owner(spec, self.dest)?)),
            None => Ok(None),
        }
    }

    /// Path of `image_path` inside the upper dir. Refuses anything that would escape it.
    pub(crate) fn upper_path(&self, image_path: &Path) -> Result<PathBuf, FileOpError> {
        let mut out = self.upper.to_path_buf();
        for c in image_path.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => out.push(n),
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(FileOpError::Escape {
                        dest: image_path.display().to_string(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Creates directory `up` (an upper-dir path) like [`fs::create_dir`], placed away from
    /// recently freed inodes: a direct child of the layer root through
    /// [`write::create_top_dir`], and every new directory marked `TOPDIR` so that the
    /// directories below spread over the emptiest flex groups (`rbuild_cache::placement::spread_subdirs`).
    pub(crate) fn make_dir(&self, up: &Path) -> Result<(), FileOpError> {
        if !self.spreads_dirs() {
            return fs::create_dir(up).map_err(io_err(up));
        }
        if up.parent() == Some(self.upper) {
            write::create_top_dir(self.upper, up).map_err(io_err(up))?;
        } else {
            fs::create_dir(up).map_err(io_err(up))?;
        }
        rbuild_cache::placement::spread_subdirs(up);
        Ok(())
    }

    /// Whether the directories this op creates are spread over the filesystem (see
    /// [`write`]'s placement and `rbuild_cache::placement`): only where inode reuse is slow
    /// (ext4 without a journal), and not when a donor snapshot gives the files, which are then
    /// hard links that allocate no inode, so the spreading would only cost (a `TOPDIR` parent
    /// makes ext4 scan every flex group per `mkdir`: ten times a plain one).
    fn spreads_dirs(&self) -> bool {
        self.slow_inode_reuse && !self.reuse.is_some_and(CopyReuse::has_donor)
    }

    /// Where `path` resolves to in the image (the layers below and this op's changes), its
    /// last component followed or not.
    pub(crate) fn resolve(&self, path: &Path, follow: Follow) -> Result<PathBuf, FileOpError> {
        Ok(self.live.resolve_path(path, follow)?)
    }

    /// Where `path` resolves to with image directory `base` (resolved) as its root, as in a
    /// chroot into `base` (ADD's archive extraction).
    pub(crate) fn resolve_below(
        &self,
        base: &Path,
        path: &Path,
        follow: Follow,
    ) -> Result<PathBuf, FileOpError> {
        Ok(self.live.resolve_path_below(base, path, follow)?)
    }

    /// Where a non-directory named by `path` lands: its parent resolved (and made to exist,
    /// new directories owned by `owner`), its last component not followed.
    pub(crate) fn place(&self, path: &Path, owner: Option<Owner>) -> Result<PathBuf, FileOpError> {
        let parent = self.resolve(path.parent().unwrap_or(Path::new("/")), Follow::Last)?;
        self.ensure_dir(&parent, owner)?;
        Ok(match path.file_name() {
            Some(name) => parent.join(name),
            None => parent,
        })
    }

    /// Whether image directory `dir` is one this op created with nothing below it.
    fn is_fresh(&self, dir: &Path) -> bool {
        self.fresh.borrow().contains(dir)
    }

    /// What is at resolved image path `path` (not following it): this op's change, else the
    /// layers below. Below a fresh directory only the upper dir is looked at.
    fn existing(&self, path: &Path) -> Result<Option<fs::Metadata>, FileOpError> {
        let up = self.upper_path(path)?;
        if let Ok(m) = fs::symlink_metadata(&up) {
            return Ok(Some(m));
        }
        if path.parent().is_some_and(|p| self.is_fresh(p)) {
            return Ok(None);
        }
        Ok(self.live.lookup(path)?.map(|e| e.metadata))
    }

    /// Makes sure every directory from `/` down to `dir` (inclusive; a resolved image path)
    /// exists in the upper dir. Directories existing below keep their metadata; new ones get
    /// `0755` and `owner`. Something other than a directory in the way is an error.
    pub(crate) fn ensure_dir(&self, dir: &Path, owner: Option<Owner>) -> Result<(), FileOpError> {
        let mut image_path = PathBuf::from("/");
        let mut parent_fresh = false;
        for c in dir.components() {
            let Component::Normal(name) = c else { continue };
            image_path.push(name);
            let target = self.upper_path(&image_path)?;
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {
                    parent_fresh = self.is_fresh(&image_path);
                    continue;
                }
                Ok(_) => return Err(FileOpError::NotADirectory { path: image_path }),
                Err(_) => {}
            }
            let existing = if parent_fresh {
                None
            } else {
                self.live.lookup(&image_path)?
            };
            match existing {
                Some(e) if e.metadata.is_dir() => {
                    self.make_dir(&target)?;
                    self.copy_metadata(&e.metadata, &target)?;
                    self.keep_dir_time(&target, e.metadata.mtime(), e.metadata.mtime_nsec());
                    parent_fresh = false;
                }
                Some(_) => return Err(FileOpError::NotADirectory { path: image_path }),
                None => {
                    self.make_dir(&target)?;
                    let (uid, gid) = owner.map(|o| (o.uid, o.gid)).unwrap_or((0, 0));
                    set_mode(&target, 0o755)?;
                    self.chown(&target, uid, gid)?;
                    self.keep_dir_time(&target, 0, 0);
                    self.fresh.borrow_mut().insert(image_path.clone());
                    parent_fresh = true;
                }
            }
        }
        Ok(())
    }

    /// Whether resolved image path `path` is an existing directory (changes of this op
    /// included).
    fn is_dir(&self, path: &Path) -> Result<bool, FileOpError> {
        Ok(self.existing(path)?.is_some_and(|m| m.is_dir()))
    }

    /// Before a directory is written at resolved image path `path`: an existing directory
    /// merges, anything else there is an error (BuildKit's "cannot copy to non-directory").
    /// Returns whether a directory is already there.
    fn dir_target(&self, path: &Path) -> Result<bool, FileOpError> {
        match self.existing(path)? {
            Some(m) if m.is_dir() => Ok(true),
            Some(_) => Err(FileOpError::CopyToNonDirectory {
                path: path.to_path_buf(),
            }),
            None => Ok(false),
        }
    }

    /// Before a non-directory is written at resolved image path `path`: a directory there is
    /// an error (BuildKit's "cannot replace to directory … with file"); anything else is
    /// replaced.
    fn file_target(&self, path: &Path) -> Result<(), FileOpError> {
        if self.existing(path)?.is_some_and(|m| m.is_dir()) {
            return Err(FileOpError::ReplaceDirectory {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    /// [`Self::file_target`] for a regular file written by [`copy_regular`], which
    /// itself refuses a directory of this op's: below a fresh directory nothing else can be
    /// in the way, so nothing is looked up (the common case of a large copy).
    fn regular_file_target(&self, path: &Path) -> Result<(), FileOpError> {
        if path.parent().is_some_and(|p| self.is_fresh(p)) {
            return Ok(());
        }
        self.file_target(path)
    }

    /// Records that directory `path` (resolved) was written by this op where nothing was below
    /// (or below a fresh parent), so its contents need no lookups in the layers below.
    fn note_new_dir(&self, path: &Path, existed: bool) {
        if !existed {
            self.fresh.borrow_mut().insert(path.to_path_buf());
        }
    }

    fn copy(&self, copy: &CopyAction, source: CopySource<'_>) -> Result<(), FileOpError> {
        let owner = self.owner(&copy.chown)?;
        let fs_roots = match &source {
            CopySource::Context(..) => Vec::new(),
            CopySource::Filesystem(view) => filesystem_roots(view, &copy.src)?,
        };
        let items = match &source {
            CopySource::Context(_, sel) => sel.roots().len(),
            CopySource::Filesystem(_) => fs_roots.len(),
        };
        if items == 0 {
            if copy.allow_empty_wildcard {
                return Ok(());
            }
            return Err(FileOpError::NotFound {
                src: copy.src.clone(),
            });
        }
        // The destination follows the image's symlinks, its last component included.
        let dest = self.resolve(Path::new(&copy.dest), Follow::Last)?;
        if copy.dest.ends_with('/') {
            self.ensure_dir(&dest, owner)?;
        }
        let dest_is_dir = copy.dest.ends_with('/') || items > 1 || self.is_dir(&dest)?;
        // A context selection is already filtered; `--from` sources are filtered here.
        let exclude = match &source {
            CopySource::Context(..) => PatternMatcher::default(),
            CopySource::Filesystem(_) => {
                PatternMatcher::new(&copy.exclude).map_err(|e| FileOpError::Context(e.into()))?
            }
        };
        let ctx = Copier {
            runner: self,
            owner,
            chmod: copy.chmod.as_ref(),
            exclude,
        };
        match source {
            CopySource::Context(context, sel) => {
                for (k, root) in sel.roots().enumerate() {
                    if copy.unpack
                        && root.kind == EntryKind::File
                        && self.extract_archive(&root.host_path, &dest, owner)?
                    {
                        continue;
                    }
                    // Stamps (digests from the memo or stat cache) only when reusing.
                    let below: Box<dyn Iterator<Item = _>> = match self.reuse {
                        Some(_) => Box::new(sel.entries_stamped(context, k)),
                        None => Box::new(sel.entries(context, k).map(|e| Ok((e, None)))),
                    };
                    let is_dir = root.kind == EntryKind::Dir;
                    let (d, d_is_dir) = match &copy.parents {
                        Some(base) => (
                            parents_dest(&dest, rel_path(&kept_rel(&root.rel, base)), is_dir),
                            true,
                        ),
                        None => (dest.clone(), dest_is_dir),
                    };
                    ctx.copy_context_root(root, below, &d, d_is_dir)?;
                }
            }
            CopySource::Filesystem(view) => {
                for root in fs_roots {
                    // Names of an image are bytes: matched in the escaped form (see
                    // `rbuild_types::bytes`), never lossily.
                    let base = root.path.file_name().map(|n| escape(n.as_bytes()));
                    if !root.metadata.is_dir() && base.is_some_and(|b| ctx.excluded(&b, false)) {
                        continue;
                    }
                    if copy.unpack
                        && root.metadata.is_file()
                        && self.extract_archive(&root.host_path, &dest, owner)?
                    {
                        continue;
                    }
                    let (d, d_is_dir) = match &copy.parents {
                        Some(base) => {
                            let rel = root.path.strip_prefix(base).unwrap_or(&root.path);
                            let rel = rel.strip_prefix("/").unwrap_or(rel);
                            (parents_dest(&dest, rel, root.metadata.is_dir()), true)
                        }
                        None => (dest.clone(), dest_is_dir),
                    };
                    ctx.copy_fs_root(view, &root, &d, d_is_dir)?;
                }
            }
        }
        Ok(())
    }

    /// WORKDIR's mkdir: the path follows the image's symlinks; missing parents are created.
    fn mkdir(&self, mkdir: &MkdirAction) -> Result<(), FileOpError> {
        let path = self.resolve(Path::new(&mkdir.path), Follow::Last)?;
        match self.existing(&path)? {
            Some(m) if m.is_dir() => return Ok(()),
            Some(_) => return Err(FileOpError::NotADirectory { path }),
            None => {}
        }
        let owner = self.owner(&mkdir.chown)?;
        if let Some(parent) = path.parent() {
            self.ensure_dir(parent, owner)?;
        }
        let target = self.upper_path(&path)?;
        self.make_dir(&target)?;
        set_mode(&target, mkdir.mode)?;
        self.keep_dir_time(&target, 0, 0);
        // Nothing was there (checked above), so nothing is below it.
        self.note_new_dir(&path, false);
        let (uid, gid) = owner.map(|o| (o.uid, o.gid)).unwrap_or((0, 0));
        self.chown(&target, uid, gid)
    }

    /// A file written whole (heredoc sources): the path follows the image's symlinks.
    fn mkfile(&self, mkfile: &MkfileAction) -> Result<(), FileOpError> {
        let owner = self.owner(&mkfile.chown)?;
        let path = self.resolve(Path::new(&mkfile.path), Follow::Last)?;
        let path = self.place(&path, owner)?;
        self.file_target(&path)?;
        let target = self.upper_path(&path)?;
        remove_existing(&target)?;
        fs::write(&target, &mkfile.data).map_err(io_err(&target))?;
        set_mode(&target, mkfile.mode)?;
        let (uid, gid) = owner.map(|o| (o.uid, o.gid)).unwrap_or((0, 0));
        self.chown(&target, uid, gid)
    }
}

/// `--parents`: the part of context path `rel` kept under the destination once `base` (the
/// part before a `/./` pivot, `.` for none) is dropped.
fn kept_rel(rel: &str, base: &str) -> String {
    if base.is_empty() || base == "." {
        return rel.to_string();
    }
    if rel == base {
        return String::new();
    }
    rel.strip_prefix(base)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(rel)
        .to_string()
}

/// `--parents`: the directory a root whose kept path is `kept` is copied into — the kept
/// path itself for a directory (its contents land there), its parent for anything else.
fn parents_dest(dest: &Path, kept: impl AsRef<Path>, is_dir: bool) -> PathBuf {
    let kept = kept.as_ref();
    if is_dir {
        dest.join(kept)
    } else {
        dest.join(kept.parent().unwrap_or(Path::new("")))
    }
}

/// The entries of `view` that a source path selects (wildcards in the last component
/// allowed). Each is followed when it is a symlink, as BuildKit's COPY follows its sources
/// (`FollowSymlinks`): the entry keeps the name it was asked by (`path`) and has what the
/// link resolves to (`host_path`, `metadata`).
fn filesystem_roots(view: &MergedView, src: &str) -> Result<Vec<MergedEntry>, FileOpError> {
    let path = Path::new(src);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let asked: Vec<PathBuf> = match name {
        Some(name) if has_wildcards(&name) => {
            // A malformed pattern matches nothing (the copy then reports the source missing).
            let glob = Glob::new(&name).ok();
            let parent = path.parent().unwrap_or(Path::new("/"));
            let mut out = Vec::new();
            if view
                .lookup_followed(parent)?
                .is_some_and(|e| e.metadata.is_dir())
            {
                for e in view.read_dir(parent)? {
                    let file = e.path.file_name().map(|n| escape(n.as_bytes()));
                    if file.is_some_and(|f| glob.as_ref().is_some_and(|g| g.matches(&f))) {
                        out.push(e.path);
                    }
                }
            }
            out
        }
        _ => vec![path.to_path_buf()],
    };
    let mut roots = Vec::with_capacity(asked.len());
    for p in asked {
        roots.extend(view.lookup_followed(&p)?);
    }
    Ok(roots)
}

pub(crate) fn remove_existing(path: &Path) -> Result<(), FileOpError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err(path)),
        Ok(_) => fs::remove_file(path).map_err(io_err(path)),
        Err(_) => Ok(()),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), FileOpError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

fn set_mtime(path: &Path, meta: &fs::Metadata) -> Result<(), FileOpError> {
    set_times(path, meta.mtime(), meta.mtime_nsec())
}

/// Sets atime and mtime of `path` (not following a final symlink).
pub(crate) fn set_times(path: &Path, secs: i64, nsecs: i64) -> Result<(), FileOpError> {
    let time = TimeSpec::new(secs, nsecs);
    nix::sys::stat::utimensat(None, path, &time, &time, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| io_err(path)(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go `filepath.Match` on one segment, as `filesystem_roots` applies it.
    fn wildcard_match(pattern: &str, name: &str) -> bool {
        Glob::new(pattern).is_ok_and(|g| g.matches(name))
    }

    #[test]
    fn wildcard_segments() {
        assert!(wildcard_match("*.txt", "a.txt"));
        assert!(!wildcard_match("*.txt", "a.txs"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(wildcard_match("[a-c]x", "bx"));
        assert!(!wildcard_match("[^a-c]x", "bx"));
        assert!(wildcard_match("\\*", "*"));
        assert!(!wildcard_match("[a-", "a"));
    }

    #[test]
    fn parents_paths() {
        assert_eq!(kept_rel("x/y/a", "."), "x/y/a");
        assert_eq!(kept_rel("x/y/a", "x"), "y/a");
        assert_eq!(kept_rel("x", "x"), "");
        assert_eq!(kept_rel("xy/a", "x"), "xy/a");
        let d = Path::new("/d");
        assert_eq!(parents_dest(d, "x/a.txt", false), Path::new("/d/x"));
        assert_eq!(parents_dest(d, "x/sub", true), Path::new("/d/x/sub"));
        assert_eq!(parents_dest(d, "a.txt", false), Path::new("/d"));
    }
}
