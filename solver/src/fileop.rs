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

pub(crate) mod reuse;
pub(crate) mod write;

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
    /// directories below spread over the emptiest flex groups ([`write::mark_topdir`]).
    pub(crate) fn make_dir(&self, up: &Path) -> Result<(), FileOpError> {
        if up.parent() == Some(self.upper) {
            write::create_top_dir(self.upper, up).map_err(io_err(up))?;
        } else {
            fs::create_dir(up).map_err(io_err(up))?;
        }
        write::mark_topdir(up);
        Ok(())
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

/// One copy's settings.
struct Copier<'a, 'b> {
    runner: &'a FileOpRunner<'b>,
    owner: Option<Owner>,
    chmod: Option<&'a FileMode>,
    /// `--exclude` for `--from` sources (empty for contexts: their selection is filtered).
    exclude: PatternMatcher,
}

/// The mode a copied entry gets: `--chmod` applied to its own bits, or those bits.
fn copied_mode(chmod: Option<&FileMode>, existing: u32, is_dir: bool) -> u32 {
    match chmod {
        Some(m) => m.apply(existing, is_dir),
        None => existing & 0o7777,
    }
}

impl Copier<'_, '_> {
    /// Whether `rel` (relative to the copied root) is left out by `--exclude`. A directory
    /// an exception could re-include something below stays, so re-included files keep
    /// their parents.
    fn excluded(&self, rel: &str, is_dir: bool) -> bool {
        !self.exclude.is_empty()
            && self.exclude.matches_or_parent_matches(rel)
            && !(is_dir && self.exclude.exception_could_match_below(rel))
    }

    /// The mode a copied entry gets (see [`copied_mode`]).
    fn mode(&self, existing: u32, is_dir: bool) -> u32 {
        copied_mode(self.chmod, existing, is_dir)
    }

    /// Where a root named `name` lands: into `dest` when `dest` is a directory, else at `dest`.
    fn target_of(
        &self,
        name: impl AsRef<Path>,
        is_dir: bool,
        dest: &Path,
        dest_is_dir: bool,
    ) -> PathBuf {
        if is_dir || !dest_is_dir {
            dest.to_path_buf()
        } else {
            dest.join(name)
        }
    }

    /// Where a copied root lands in the image, made ready: a directory root at `target`
    /// resolved (its last component followed) and made to exist; anything else at its
    /// resolved parent, under its own name (see [`FileOpRunner::place`]).
    fn root_target(&self, target: &Path, is_dir: bool) -> Result<PathBuf, FileOpError> {
        if is_dir {
            let t = self.runner.resolve(target, Follow::Last)?;
            self.runner.ensure_dir(&t, self.owner)?;
            Ok(t)
        } else {
            self.runner.place(target, self.owner)
        }
    }

    /// A copied directory's contents went into `target`: the directory takes the source
    /// directory's mtime (its mode and owner stay), as BuildKit's copy restores it
    /// (`copyFileTimestamp` of the source), whether `target` was made for it or existed.
    fn take_dir_time(&self, target: &Path, source: &fs::Metadata) -> Result<(), FileOpError> {
        let up = self.runner.upper_path(target)?;
        self.runner
            .keep_dir_time(&up, source.mtime(), source.mtime_nsec());
        Ok(())
    }

    fn copy_context_root(
        &self,
        root: &ContextEntry,
        below: impl Iterator<Item = Result<(ContextEntry, Option<FileStamp>), ContextError>>,
        dest: &Path,
        dest_is_dir: bool,
    ) -> Result<(), FileOpError> {
        let name = root.rel.rsplit('/').next().unwrap_or(&root.rel);
        let is_dir = root.kind == EntryKind::Dir;
        // Context paths are escaped text (see `rbuild_context::rel_path`): joined as bytes.
        let target = self.target_of(rel_path(name), is_dir, dest, dest_is_dir);
        let target = self.root_target(&target, is_dir)?;
        if !is_dir {
            return self.write_context_entry(root, &target);
        }
        // Directories and symlinks in order (parents before children); regular files, which
        // only need their directory, in parallel batches of COPY_BATCH (flushed after their
        // directories exist: the entries come in pre-order), so memory does not grow with the
        // number of files.
        let mut files = Vec::new();
        for item in below {
            let (e, stamp) = item?;
            let rel = match e.rel.strip_prefix(root.rel.as_str()) {
                Some(rest) if !root.rel.is_empty() && root.rel != "." => {
                    rest.trim_start_matches('/')
                }
                _ => e.rel.as_str(),
            };
            let t = target.join(rel_path(rel));
            if e.kind == EntryKind::File {
                self.runner.regular_file_target(&t)?;
                let up = self.runner.upper_path(&t)?;
                files.push((e, up, stamp));
                if files.len() >= COPY_BATCH {
                    self.copy_context_files(&files)?;
                    files.clear();
                }
            } else {
                self.write_context_entry(&e, &t)?;
            }
        }
        self.copy_context_files(&files)?;
        let meta = fs::metadata(&root.host_path).map_err(io_err(&root.host_path))?;
        self.take_dir_time(&target, &meta)
    }

    /// Copies regular context files `(entry, upper path, stamp)` in parallel (linking those
    /// the reuse's donor has); their directories exist.
    fn copy_context_files(
        &self,
        files: &[(ContextEntry, PathBuf, Option<FileStamp>)],
    ) -> Result<(), FileOpError> {
        let (uid, gid) = self.owner.map(|o| (o.uid, o.gid)).unwrap_or((0, 0));
        let owner = self.runner.file_owner(uid, gid);
        let chmod = self.chmod;
        let upper = self.runner.upper;
        let reuse = self.runner.reuse;
        files.par_iter().try_for_each(|(e, up, stamp)| {
            let mode = copied_mode(chmod, e.mode, false);
            let attrs = FileAttrs { mode, owner };
            let (Some(reuse), Some(stamp)) = (reuse, stamp) else {
                return copy_regular(upper, &e.host_path, up, attrs).map(drop);
            };
            if reuse.try_link(up, e, stamp, attrs).map_err(io_err(up))? {
                return Ok(());
            }
            let from = copy_regular(upper, &e.host_path, up, attrs)?;
            reuse.copied(up, e, stamp, attrs, from);
            Ok(())
        })
    }

    /// Writes directory entry `up` (upper path of resolved image path `target`): an
    /// existing directory merges, anything else there is an error. Returns whether it existed.
    fn write_dir(&self, target: &Path, up: &Path) -> Result<(), FileOpError> {
        let existed = self.runner.dir_target(target)?;
        if !fs::symlink_metadata(up).is_ok_and(|m| m.is_dir()) {
            self.runner.make_dir(up)?;
        }
        self.runner.note_new_dir(target, existed);
        Ok(())
    }

    /// Context files become root-owned (or `--chown`), keep mode (or `--chmod`) and mtime.
    fn write_context_entry(&self, e: &ContextEntry, target: &Path) -> Result<(), FileOpError> {
        let up = self.runner.upper_path(target)?;
        let (uid, gid) = self.owner.map(|o| (o.uid, o.gid)).unwrap_or((0, 0));
        let stat = || fs::symlink_metadata(&e.host_path).map_err(io_err(&e.host_path));
        match e.kind {
            EntryKind::Dir => {
                let meta = stat()?;
                self.write_dir(target, &up)?;
                set_mode(&up, self.mode(e.mode, true))?;
                self.runner.chown(&up, uid, gid)?;
                self.runner
                    .keep_dir_time(&up, meta.mtime(), meta.mtime_nsec());
                Ok(())
            }
            EntryKind::File => {
                self.runner.file_target(target)?;
                copy_regular(
                    self.runner.upper,
                    &e.host_path,
                    &up,
                    FileAttrs {
                        mode: self.mode(e.mode, false),
                        owner: self.runner.file_owner(uid, gid),
                    },
                )
                .map(drop)
            }
            EntryKind::Symlink => {
                let meta = stat()?;
                self.runner.file_target(target)?;
                remove_existing(&up)?;
                let link = fs::read_link(&e.host_path).map_err(io_err(&e.host_path))?;
                std::os::unix::fs::symlink(&link, &up).map_err(io_err(&up))?;
                self.runner.chown(&up, uid, gid)?;
                set_mtime(&up, &meta)
            }
        }
    }

    fn copy_fs_root(
        &self,
        view: &MergedView,
        root: &MergedEntry,
        dest: &Path,
        dest_is_dir: bool,
    ) -> Result<(), FileOpError> {
        let name = root.path.file_name().unwrap_or_default();
        let is_dir = root.metadata.is_dir();
        let target = self.target_of(name, is_dir, dest, dest_is_dir);
        let target = self.root_target(&target, is_dir)?;
        if !is_dir {
            return self.write_fs_entry(root, &target);
        }
        for e in view.walk(&root.path)? {
            let Ok(rel) = e.path.strip_prefix(&root.path) else {
                continue;
            };
            if rel.as_os_str().is_empty()
                || self.excluded(&escape(rel.as_os_str().as_bytes()), e.metadata.is_dir())
            {
                continue;
            }
            self.write_fs_entry(&e, &target.join(rel))?;
        }
        self.take_dir_time(&target, &root.metadata)
    }

    /// Files from another stage keep owner (unless `--chown`), mode (unless `--chmod`), mtime and
    /// xattrs (`security.capability` set by `setcap`, as BuildKit's copy keeps them).
    fn write_fs_entry(&self, e: &MergedEntry, target: &Path) -> Result<(), FileOpError> {
        let up = self.runner.upper_path(target)?;
        let m = &e.metadata;
        let (uid, gid) = self
            .owner
            .map(|o| (o.uid, o.gid))
            .unwrap_or((m.uid(), m.gid()));
        let ft = m.file_type();
        if ft.is_dir() {
            self.write_dir(target, &up)?;
        } else if ft.is_symlink() {
            self.runner.file_target(target)?;
            remove_existing(&up)?;
            let link = fs::read_link(&e.host_path).map_err(io_err(&e.host_path))?;
            std::os::unix::fs::symlink(&link, &up).map_err(io_err(&up))?;
            self.runner.chown(&up, uid, gid)?;
            copy_content_xattrs(&e.host_path, &up);
            return set_mtime(&up, m);
        } else if ft.is_file() {
            self.runner.file_target(target)?;
            let mode = self.mode(m.mode(), false);
            let owner = self.runner.file_owner(uid, gid);
            copy_regular(
                self.runner.upper,
                &e.host_path,
                &up,
                FileAttrs { mode, owner },
            )?;
            // After the owner is set: a chown clears security.capability.
            copy_content_xattrs(&e.host_path, &up);
            return Ok(());
        } else {
            // Devices, fifos and sockets are not copied between stages (BuildKit copies them
            // only as root; we skip them rather than half-copy them).
            return Ok(());
        }
        set_mode(&up, self.mode(m.mode(), ft.is_dir()))?;
        self.runner.chown(&up, uid, gid)?;
        copy_content_xattrs(&e.host_path, &up);
        self.runner.keep_dir_time(&up, m.mtime(), m.mtime_nsec());
        Ok(())
    }
}

/// Copies regular file `from` to upper-dir path `to` (replacing a non-directory there) with
/// `attrs` and `from`'s mtime. A directory there is BuildKit's "cannot replace to directory …
/// with file" (named by its image path: `to` below `upper`).
fn copy_regular(
    upper: &Path,
    from: &Path,
    to: &Path,
    attrs: FileAttrs,
) -> Result<write::CopiedFrom, FileOpError> {
    write::copy_file(from, to, attrs).map_err(|source| {
        if source.raw_os_error() == Some(libc::EISDIR) {
            let rel = to.strip_prefix(upper).unwrap_or(to);
            return FileOpError::ReplaceDirectory {
                path: Path::new("/").join(rel),
            };
        }
        FileOpError::Copy {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            source,
        }
    })
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
