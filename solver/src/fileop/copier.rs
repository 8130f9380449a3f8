//! Copying one source root of a COPY/ADD into the layer: a context's entries (regular files in
//! parallel batches, linked from the last run's snapshot where [`super::CopyReuse`] allows) or
//! another vertex's filesystem, each entry given its mode, owner and times.

use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use super::reuse::LinkDirs;
use super::*;

/// Regular files a parallel task copies one after the other (see `copy_context_files`).
const LINK_RUN: usize = 64;

/// One copy's settings.
pub(super) struct Copier<'a, 'b> {
    pub(super) runner: &'a FileOpRunner<'b>,
    pub(super) owner: Option<Owner>,
    pub(super) chmod: Option<&'a FileMode>,
    /// `--exclude` for `--from` sources (empty for contexts: their selection is filtered).
    pub(super) exclude: PatternMatcher,
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
    pub(super) fn excluded(&self, rel: &str, is_dir: bool) -> bool {
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

    pub(super) fn copy_context_root(
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
        // Directories and symlinks in order (parents before children) on this thread; regular
        // files, which only need their directory, in parallel batches of COPY_BATCH (handed
        // over after their directories exist: the entries come in pre-order), so memory does
        // not grow with the number of files. The first full batch starts a thread that copies
        // each batch while this one lists and makes the directories of the next.
        let (uid, gid) = self.owner.map(|o| (o.uid, o.gid)).unwrap_or((0, 0));
        let batches = FileBatches {
            upper: self.runner.upper,
            reuse: self.runner.reuse,
            owner: self.runner.file_owner(uid, gid),
            chmod: self.chmod,
        };
        std::thread::scope(|scope| {
            let mut behind: Option<Behind<'_, '_>> = None;
            let mut files = Vec::new();
            let listed = (|| {
                for item in below {
                    let (e, stamp) = item?;
                    let rel = match e.rel.strip_prefix(root.rel.as_str()) {
                        Some(rest) if !root.rel.is_empty() && root.rel != "." => {
                            rest.trim_start_matches('/')
                        }
                        _ => e.rel.as_str(),
                    };
                    let t = target.join(rel_path(rel));
                    if e.kind != EntryKind::File {
                        self.write_context_entry(&e, &t)?;
                        continue;
                    }
                    self.runner.regular_file_target(&t)?;
                    let up = self.runner.upper_path(&t)?;
                    files.push((e, up, stamp));
                    if files.len() >= COPY_BATCH {
                        let full = std::mem::take(&mut files);
                        let behind = behind.get_or_insert_with(|| Behind::start(scope, &batches));
                        if !behind.hand_over(full) {
                            // The copying thread failed: its error is returned below.
                            break;
                        }
                    }
                }
                Ok::<(), FileOpError>(())
            })();
            let copied = match behind {
                Some(behind) => behind.finish(),
                None => Ok(()),
            };
            // The copying thread's error first: it is why the listing stopped, if it did.
            copied.and(listed).and_then(|()| batches.copy(&files))
        })?;
        let meta = fs::metadata(&root.host_path).map_err(io_err(&root.host_path))?;
        self.take_dir_time(&target, &meta)
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

    pub(super) fn copy_fs_root(
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

/// A type of batch: regular context files `(entry, upper path, stamp)` whose directories exist.
type FileBatch = Vec<(ContextEntry, PathBuf, Option<FileStamp>)>;

/// What copying a batch of regular context files needs (shareable between threads, unlike the
/// runner).
struct FileBatches<'a> {
    upper: &'a Path,
    reuse: Option<&'a CopyReuse>,
    owner: Option<(u32, u32)>,
    chmod: Option<&'a FileMode>,
}

impl FileBatches<'_> {
    /// Copies the files in parallel (linking those the reuse's donor has), in runs of files
    /// (which come in directory order) per task: a run links relative to its directories,
    /// opened once.
    fn copy(
        &self,
        files: &[(ContextEntry, PathBuf, Option<FileStamp>)],
    ) -> Result<(), FileOpError> {
        let FileBatches {
            upper,
            reuse,
            owner,
            chmod,
        } = *self;
        files.par_chunks(LINK_RUN).try_for_each(|run| {
            let mut dirs = LinkDirs::default();
            run.iter().try_for_each(|(e, up, stamp)| {
                let mode = copied_mode(chmod, e.mode, false);
                let attrs = FileAttrs { mode, owner };
                let (Some(reuse), Some(stamp)) = (reuse, stamp) else {
                    return copy_regular(upper, &e.host_path, up, attrs).map(drop);
                };
                if reuse
                    .try_link(&mut dirs, up, e, stamp, attrs)
                    .map_err(io_err(up))?
                {
                    return Ok(());
                }
                let from = copy_regular(upper, &e.host_path, up, attrs)?;
                reuse.copied(up, e, stamp, attrs, from);
                Ok(())
            })
        })
    }
}

/// The copying thread: where batches go, and its outcome.
type CopyThread<'scope> = (
    SyncSender<FileBatch>,
    ScopedJoinHandle<'scope, Result<(), FileOpError>>,
);

/// The thread that copies batches of files behind the listing (see `copy_context_root`):
/// one batch waits at most while another is copied.
struct Behind<'scope, 'a> {
    batches: &'scope FileBatches<'a>,
    thread: Option<CopyThread<'scope>>,
    /// The error of a batch copied here (when no thread could be had).
    failed: Option<FileOpError>,
}

impl<'scope, 'a: 'scope> Behind<'scope, 'a> {
    fn start<'env>(scope: &'scope Scope<'scope, 'env>, batches: &'scope FileBatches<'a>) -> Self {
        let (tx, rx) = sync_channel::<FileBatch>(1);
        let thread = std::thread::Builder::new()
            .name("copy-files".into())
            .spawn_scoped(scope, move || {
                for batch in rx {
                    batches.copy(&batch)?;
                }
                Ok(())
            })
            .ok()
            .map(|handle| (tx, handle));
        Behind {
            batches,
            thread,
            failed: None,
        }
    }

    /// Hands `files` over (or copies them here when no thread could be had); false once
    /// copying failed.
    fn hand_over(&mut self, files: FileBatch) -> bool {
        match &self.thread {
            Some((tx, _)) => tx.send(files).is_ok(),
            None => match self.batches.copy(&files) {
                Ok(()) => true,
                Err(e) => {
                    self.failed = Some(e);
                    false
                }
            },
        }
    }

    /// Waits for every batch handed over; their first error.
    fn finish(self) -> Result<(), FileOpError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let Some((tx, copier)) = self.thread else {
            return Ok(());
        };
        drop(tx);
        copier
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
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
