//! ADD's archive extraction (Docker semantics): a source that is a regular file holding a tar
//! archive — plain, gzip, bzip2, xz or zstd, recognised by its content, never its name
//! ([`rbuild_archive::probe_tar`]) — is extracted into the destination directory instead of
//! being copied. `rbuild_archive`'s engine reads, sanitizes (Docker's untar: a leading `/` is
//! dropped, `..` climbing out of the destination is an error) and classifies the entries;
//! [`AddSink`] places them.
//!
//! Entries are written into the file op's upper dir. Invariants:
//! - no entry lands outside the destination: an entry's parent directories resolve as in
//!   Docker's untar, which BuildKit runs chrooted into the destination: symlinks on the way
//!   (the image's, and those the archive created) are followed with the destination as their
//!   root ([`rbuild_types::root_path`]), so `bin/tool` lands in `usr/bin` on a merged-/usr
//!   base, and nothing is written through a symlink on the host;
//! - the last component is not followed: an entry replaces what is there (a directory entry
//!   merges with a directory), as in Docker;
//! - an archive cannot forge overlay whiteouts: `.wh.`-prefixed names and 0/0 character
//!   devices are refused;
//! - parent directories that exist below keep their metadata (`ensure_dir`); directories,
//!   files and links from the archive keep its modes, owners and mtimes, owners replaced by
//!   `--chown` when given.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{makedev, Mode, SFlag};
use rbuild_archive::{
    extract, probe_tar, ArchiveError, Entry, EntryKind, ExtractError, NameError, NamePolicy, Sink,
};
use rbuild_cache::overlay::set_content_xattrs;
use rbuild_types::root_path::Follow;

use crate::fileop::write::{create_replacing, finish_fd, FileAttrs, InTheWay};
use crate::fileop::{io_err, remove_existing, set_times, FileOpError, FileOpRunner};
use crate::owner::Owner;

impl FileOpRunner<'_> {
    /// Extracts the archive at `host_path` into the image directory `dest` when the file is
    /// an archive; returns `false` (nothing written) when it is not one.
    pub(crate) fn extract_archive(
        &self,
        host_path: &Path,
        dest: &Path,
        owner: Option<Owner>,
    ) -> Result<bool, FileOpError> {
        let file = File::open(host_path).map_err(io_err(host_path))?;
        let Some(stream) = probe_tar(BufReader::new(file)).map_err(io_err(host_path))? else {
            return Ok(false);
        };
        self.ensure_dir(dest, owner)?;
        let mut sink = AddSink {
            runner: self,
            archive: host_path,
            dest,
            owner,
            dir_times: Vec::new(),
        };
        extract(stream, NamePolicy::Untar, &mut sink).map_err(|e| match e {
            ExtractError::Sink(e) => e,
            ExtractError::Archive(e) => archive_error(host_path, e),
        })?;
        Ok(true)
    }
}

/// What a bad ADD archive is called.
fn archive_error(path: &Path, e: ArchiveError) -> FileOpError {
    let refused = |entry: &rbuild_types::ByteString, why: String| FileOpError::ArchiveEntry {
        path: path.to_path_buf(),
        entry: entry.lossy().into_owned(),
        why,
    };
    match e {
        ArchiveError::Read { source } => FileOpError::Archive {
            path: path.to_path_buf(),
            source,
        },
        ArchiveError::Truncated { detail } => FileOpError::Archive {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::UnexpectedEof, detail),
        },
        ArchiveError::Name { entry, reason } => refused(
            &entry,
            match reason {
                NameError::ClimbsOut => "its path climbs out of the destination".into(),
                other => format!("its name {}", other.reason()),
            },
        ),
        ArchiveError::LinkTarget { entry, reason, .. } => refused(
            &entry,
            match reason {
                NameError::ClimbsOut => "its hard-link target is outside the archive".into(),
                other => format!("its hard-link target {}", other.reason()),
            },
        ),
        ArchiveError::NoLinkTarget { entry, kind } => {
            refused(&entry, format!("a {kind} without a target"))
        }
        ArchiveError::Unsupported { entry, flag } => {
            refused(&entry, format!("entry type {flag:?} is not supported"))
        }
        ArchiveError::Header { entry, field } => {
            refused(&entry, format!("its {field} field is not a number"))
        }
    }
}

/// Places ADD's archive entries below image directory `dest` (see the module docs).
struct AddSink<'r, 'a> {
    runner: &'r FileOpRunner<'a>,
    /// The archive, for messages.
    archive: &'r Path,
    dest: &'r Path,
    owner: Option<Owner>,
    /// Upper-dir directories and their mtimes, set last (adding entries changes them).
    dir_times: Vec<(PathBuf, u64)>,
}

impl AddSink<'_, '_> {
    fn refuse(&self, e: &Entry, why: &str) -> FileOpError {
        FileOpError::ArchiveEntry {
            path: self.archive.to_path_buf(),
            entry: e.name.lossy().into_owned(),
            why: why.to_string(),
        }
    }

    /// The owner an entry gets: `--chown`'s, else the archive's.
    fn owner_of(&self, e: &Entry) -> Result<(u32, u32), FileOpError> {
        if let Some(o) = self.owner {
            return Ok((o.uid, o.gid));
        }
        match (u32::try_from(e.uid), u32::try_from(e.gid)) {
            (Ok(uid), Ok(gid)) => Ok((uid, gid)),
            _ => Err(self.refuse(e, "its owner id is out of range")),
        }
    }
}

impl Sink for AddSink<'_, '_> {
    type Error = FileOpError;

    fn entry(&mut self, e: &Entry, contents: &mut dyn Read) -> Result<(), FileOpError> {
        let runner = self.runner;
        let Some(file_name) = e.path.file_name() else {
            return Ok(());
        };
        if file_name.as_bytes().starts_with(b".wh.") {
            return Err(self.refuse(e, "names starting with .wh. are whiteouts"));
        }
        let parent = runner.resolve_below(self.dest, e.path.parent(), Follow::Last)?;
        runner
            .ensure_dir(&parent, self.owner)
            .map_err(|_| self.refuse(e, "a parent is not a directory"))?;
        let up = runner.upper_path(&parent.join(file_name))?;
        let (uid, gid) = self.owner_of(e)?;
        let mtime = i64::try_from(e.mtime).unwrap_or(i64::MAX);
        match &e.kind {
            EntryKind::Dir => {
                if !fs::symlink_metadata(&up).is_ok_and(|m| m.is_dir()) {
                    remove_existing(&up)?;
                    runner.make_dir(&up)?;
                }
                set_mode(&up, e.mode)?;
                runner.chown(&up, uid, gid)?;
                set_content_xattrs(&up, &e.xattrs);
                self.dir_times.push((up, e.mtime));
                return Ok(());
            }
            EntryKind::File => {
                let mut out =
                    create_replacing(&up, InTheWay::RemoveDirectory).map_err(io_err(&up))?;
                io::copy(contents, &mut out).map_err(io_err(&up))?;
                let attrs = FileAttrs {
                    mode: e.mode,
                    owner: runner.file_owner(uid, gid),
                };
                finish_fd(&out, attrs, mtime, 0).map_err(io_err(&up))?;
                // After the owner is set: a chown clears security.capability.
                set_content_xattrs(&up, &e.xattrs);
                return Ok(());
            }
            EntryKind::Symlink { target } => {
                remove_existing(&up)?;
                symlink(std::ffi::OsStr::from_bytes(target), &up).map_err(io_err(&up))?;
                runner.chown(&up, uid, gid)?;
                set_content_xattrs(&up, &e.xattrs);
            }
            EntryKind::HardLink { target } => {
                let source = runner.resolve_below(self.dest, target.as_path(), Follow::NotLast)?;
                let source = runner.upper_path(&source)?;
                remove_existing(&up)?;
                return fs::hard_link(&source, &up).map_err(io_err(&source));
            }
            EntryKind::CharDevice { major: 0, minor: 0 } => {
                return Err(self.refuse(e, "a 0/0 character device is a whiteout"));
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                let kind = if matches!(e.kind, EntryKind::CharDevice { .. }) {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                remove_existing(&up)?;
                mknod(
                    &up,
                    kind,
                    e.mode,
                    makedev(u64::from(*major), u64::from(*minor)),
                )?;
                runner.chown(&up, uid, gid)?;
            }
            EntryKind::Fifo => {
                remove_existing(&up)?;
                mknod(&up, SFlag::S_IFIFO, e.mode, 0)?;
                runner.chown(&up, uid, gid)?;
            }
        }
        set_times(&up, mtime, 0)
    }

    fn finish(&mut self) -> Result<(), FileOpError> {
        // Directory mtimes last: writing entries into a directory changes its mtime.
        for (dir, mtime) in self.dir_times.iter().rev() {
            set_times(dir, i64::try_from(*mtime).unwrap_or(i64::MAX), 0)?;
        }
        Ok(())
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), FileOpError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

/// Creates a node of `kind` (device or FIFO) with permission bits `mode`.
fn mknod(path: &Path, kind: SFlag, mode: u32, dev: u64) -> Result<(), FileOpError> {
    let perm = Mode::from_bits_truncate(mode);
    nix::sys::stat::mknod(path, kind, perm, dev).map_err(|e| io_err(path)(e.into()))
}
