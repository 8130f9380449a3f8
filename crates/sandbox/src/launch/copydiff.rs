//! The copy-and-diff snapshotter, for hosts where overlayfs cannot be mounted: the layers are
//! copied into a plain directory that becomes the sandbox's root (bind-mounted), and after the
//! run the differences are written to the upper dir **in overlayfs upper-dir format**, so that
//! the layer is the same as the overlay snapshotter's — only slower (a full copy per RUN).
//!
//! How changes are found: right after the copy, every entry's inode number and ctime are
//! recorded. ctime cannot be set from user space and changes with every write, chmod, chown,
//! rename or link, so an entry whose inode and ctime are unchanged was not touched (even if
//! the command restored its mtime). Then:
//! - a new or changed entry is copied to the upper dir with its parents (which keep the
//!   metadata they have in the root, as overlayfs copy-up does);
//! - a directory that replaced one of the lower layers' (new inode) is marked opaque;
//! - an entry that is gone gets a whiteout (a 0:0 character device), unless its parent is gone
//!   too or was replaced;
//! - entries sharing an inode in the root share one in the upper dir (hardlinks the command
//!   made stay links; hardlinks of the lower layers are copied apart, as overlayfs shows them).

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use rbuild_cache::overlay::{create_whiteout, is_opaque, is_whiteout, opaque_xattr, set_opaque};
use rbuild_types::Privileges;

use crate::shared::error::{Result, SetupError};

/// What an entry of the root was right after the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Before {
    /// Which file this is: inode number and birth time (filesystems reuse a freed inode number
    /// at once, e.g. for `rm -rf /d && mkdir /d`; the birth time tells them apart).
    identity: Identity,
    ctime: i64,
    ctime_nsec: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    ino: u64,
    btime: Option<(i64, u32)>,
}

impl Before {
    fn of(path: &Path, md: &Metadata) -> Before {
        Before {
            identity: identity(path, md),
            ctime: md.ctime(),
            ctime_nsec: md.ctime_nsec(),
        }
    }
}

/// The inode number and, where the filesystem records it, the birth time of `path`.
fn identity(path: &Path, md: &Metadata) -> Identity {
    let btime = cpath(path).ok().and_then(|p| {
        // libc: nix 0.29 has no statx (the only call that reports birth times).
        // SAFETY: statx only writes into the zeroed struct we pass; the path is NUL-terminated.
        let mut stx: libc::statx = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::statx(
                libc::AT_FDCWD,
                p.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
                libc::STATX_BTIME,
                &mut stx,
            )
        };
        (rc == 0 && stx.stx_mask & libc::STATX_BTIME != 0)
            .then_some((stx.stx_btime.tv_sec, stx.stx_btime.tv_nsec))
    });
    Identity {
        ino: md.ino(),
        btime,
    }
}

/// A root directory made by copying layers, and what it held before the run.
#[derive(Debug)]
pub struct CopyRoot {
    /// The root: a plain directory, bind-mounted as the sandbox's `/`.
    pub dir: PathBuf,
    /// Every entry right after the copy, by path relative to `dir`, parents first.
    before: BTreeMap<PathBuf, Before>,
}

impl CopyRoot {
    /// Copies `layers` (overlayfs upper-dir format, **bottom first**) into `dir` (which must
    /// not exist), applying whiteouts and opaque directories, and records the result.
    pub fn prepare(layers: &[PathBuf], dir: &Path) -> Result<CopyRoot> {
        Self::prepare_with(layers, dir, |_| Ok(()))
    }

    /// [`CopyRoot::prepare`], with `furnish` adding to the root before it is recorded (what
    /// it adds is then no change).
    pub fn prepare_with(
        layers: &[PathBuf],
        dir: &Path,
        furnish: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<CopyRoot> {
        std::fs::create_dir(dir).map_err(|e| SetupError::io("mkdir", dir, e))?;
        for layer in layers {
            apply_dir(layer, dir)?;
        }
        furnish(dir)?;
        let mut before = BTreeMap::new();
        record(dir, Path::new(""), &mut before)?;
        Ok(CopyRoot {
            dir: dir.to_path_buf(),
            before,
        })
    }

    /// Writes what changed in the root since [`CopyRoot::prepare`] into `upper` (an empty
    /// directory), in overlayfs upper-dir format; opaque directories get the xattr a process
    /// with `privileges` writes.
    pub fn diff_into(&self, upper: &Path, privileges: &Privileges) -> Result<()> {
        let mut diff = Diff {
            root: &self.dir,
            upper,
            opaque_xattr: opaque_xattr(privileges),
            before: &self.before,
            links: HashMap::new(),
            dirs: Vec::new(),
        };
        diff.walk(Path::new(""))?;
        diff.whiteouts()?;
        // Directory times last, deepest first: adding entries changes a directory's mtime.
        let mut dirs = std::mem::take(&mut diff.dirs);
        dirs.sort_by_key(|rel| std::cmp::Reverse(rel.components().count()));
        for rel in dirs {
            let md = lstat(&self.dir.join(&rel))?;
            set_times(&upper.join(&rel), &md)?;
        }
        Ok(())
    }
}

fn lstat(path: &Path) -> Result<Metadata> {
    std::fs::symlink_metadata(path).map_err(|e| SetupError::io("stat", path, e))
}

fn cache_err(e: rbuild_cache::CacheError) -> SetupError {
    SetupError::Remote(e.to_string())
}

/// Records every entry under `base/rel`.
fn record(base: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Before>) -> Result<()> {
    let dir = base.join(rel);
    for entry in std::fs::read_dir(&dir).map_err(|e| SetupError::io("read dir", &dir, e))? {
        let entry = entry.map_err(|e| SetupError::io("read dir", &dir, e))?;
        let r = rel.join(entry.file_name());
        let path = base.join(&r);
        let md = lstat(&path)?;
        out.insert(r.clone(), Before::of(&path, &md));
        if md.is_dir() {
            record(base, &r, out)?;
        }
    }
    Ok(())
}

/// Removes whatever is at `path` (nothing if absent).
fn remove_any(path: &Path) -> Result<()> {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let res = if md.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    res.map_err(|e| SetupError::io("remove", path, e))
}

/// Applies one layer directory `src` onto `dst`. Hardlinked files of a layer become separate
/// copies, as overlayfs (without `index=on`) shows them once one is written to: the layer is
/// then the one the overlay snapshotter would give.
fn apply_dir(src: &Path, dst: &Path) -> Result<()> {
    for entry in std::fs::read_dir(src).map_err(|e| SetupError::io("read dir", src, e))? {
        let entry = entry.map_err(|e| SetupError::io("read dir", src, e))?;
        let s = entry.path();
        let d = dst.join(entry.file_name());
        let md = lstat(&s)?;
        if is_whiteout(&md) {
            remove_any(&d)?;
            continue;
        }
        if md.is_dir() {
            match std::fs::symlink_metadata(&d) {
                Ok(existing) if existing.is_dir() => {
                    if is_opaque(&s) {
                        remove_any(&d)?;
                        std::fs::create_dir(&d).map_err(|e| SetupError::io("mkdir", &d, e))?;
                    }
                }
                Ok(_) => {
                    remove_any(&d)?;
                    std::fs::create_dir(&d).map_err(|e| SetupError::io("mkdir", &d, e))?;
                }
                Err(_) => {
                    std::fs::create_dir(&d).map_err(|e| SetupError::io("mkdir", &d, e))?;
                }
            }
            apply_dir(&s, &d)?;
            set_meta(&s, &d, &md)?;
            set_times(&d, &md)?;
        } else {
            remove_any(&d)?;
            copy_entry(&s, &d, &md)?;
        }
    }
    Ok(())
}

/// Copies the non-directory `src` (described by `md`) to `dst` with its metadata.
fn copy_entry(src: &Path, dst: &Path, md: &Metadata) -> Result<()> {
    let ft = md.file_type();
    if ft.is_file() {
        std::fs::copy(src, dst).map_err(|e| SetupError::io("copy to", dst, e))?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(|e| SetupError::io("readlink", src, e))?;
        std::os::unix::fs::symlink(&target, dst).map_err(|e| SetupError::io("symlink", dst, e))?;
    } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() || ft.is_socket() {
        let kind = SFlag::from_bits_truncate(md.mode()) & SFlag::S_IFMT;
        let perm = Mode::from_bits_truncate(md.mode());
        nix::sys::stat::mknod(dst, kind, perm, md.rdev())
            .map_err(|e| SetupError::io("mknod", dst, e.into()))?;
    }
    set_meta(src, dst, md)?;
    set_times(dst, md)
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        SetupError::io(
            "use path",
            path,
            std::io::Error::from(std::io::ErrorKind::InvalidInput),
        )
    })
}

/// Owner, mode (not for symlinks) and xattrs (without overlayfs' own) of `src` onto `dst`.
fn set_meta(src: &Path, dst: &Path, md: &Metadata) -> Result<()> {
    std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid()))
        .map_err(|e| SetupError::io("chown", dst, e))?;
    if !md.file_type().is_symlink() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(|e| SetupError::io("chmod", dst, e))?;
    }
    let names = match xattr::list(src) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(()),
        Err(e) => return Err(SetupError::io("list xattrs of", src, e)),
    };
    for name in names {
        let text = name.to_string_lossy();
        if text.starts_with("trusted.overlay.") || text.starts_with("user.overlay.") {
            continue;
        }
        if let Ok(Some(value)) = xattr::get(src, &name) {
            xattr::set(dst, &name, &value).map_err(|e| SetupError::io("set xattr on", dst, e))?;
        }
    }
    Ok(())
}

/// Access and modification times of `md` onto `dst` (not following symlinks).
fn set_times(dst: &Path, md: &Metadata) -> Result<()> {
    let atime = TimeSpec::new(md.atime(), md.atime_nsec());
    let mtime = TimeSpec::new(md.mtime(), md.mtime_nsec());
    nix::sys::stat::utimensat(None, dst, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| SetupError::io("set times of", dst, e.into()))
}

/// One diff of a root against what it was.
struct Diff<'a> {
    root: &'a Path,
    upper: &'a Path,
    /// The xattr that marks an opaque directory here.
    opaque_xattr: &'static str,
    before: &'a BTreeMap<PathBuf, Before>,
    /// Root inode → its first copy in the upper dir.
    links: HashMap<u64, PathBuf>,
    /// Directories created in the upper dir (relative), to give their times at the end.
    dirs: Vec<PathBuf>,
}

impl Diff<'_> {
    fn changed(&self, rel: &Path, md: &Metadata) -> bool {
        self.before.get(rel) != Some(&Before::of(&self.root.join(rel), md))
    }

    /// Whether `rel` is a different file than before (a replacement, not a modification).
    fn replaced(&self, rel: &Path, md: &Metadata) -> bool {
        self.before
            .get(rel)
            .is_some_and(|b| b.identity != identity(&self.root.join(rel), md))
    }

    /// Creates the upper dir's copies of `rel`'s missing ancestors.
    fn ensure_parents(&mut self, rel: &Path) -> Result<()> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut prefix = PathBuf::new();
        for c in parent.components() {
            prefix.push(c);
            self.ensure_dir(&prefix)?;
        }
        Ok(())
    }

    /// Creates `rel` in the upper dir as a copy of the root's directory (no-op if present).
    fn ensure_dir(&mut self, rel: &Path) -> Result<()> {
        let up = self.upper.join(rel);
        if std::fs::symlink_metadata(&up).is_ok() {
            return Ok(());
        }
        let src = self.root.join(rel);
        let md = lstat(&src)?;
        std::fs::create_dir(&up).map_err(|e| SetupError::io("mkdir", &up, e))?;
        set_meta(&src, &up, &md)?;
        self.dirs.push(rel.to_path_buf());
        Ok(())
    }

    fn walk(&mut self, rel: &Path) -> Result<()> {
        let dir = self.root.join(rel);
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| SetupError::io("read dir", &dir, e))? {
            let entry = entry.map_err(|e| SetupError::io("read dir", &dir, e))?;
            entries.push(rel.join(entry.file_name()));
        }
        entries.sort();
        for r in entries {
            let md = lstat(&self.root.join(&r))?;
            let changed = self.changed(&r, &md);
            if md.is_dir() {
                if changed {
                    self.ensure_parents(&r)?;
                    self.ensure_dir(&r)?;
                    if self.replaced(&r, &md) {
                        set_opaque(&self.upper.join(&r), self.opaque_xattr).map_err(cache_err)?;
                    }
                }
                self.walk(&r)?;
            } else if changed {
                self.ensure_parents(&r)?;
                let dst = self.upper.join(&r);
                match self.links.get(&md.ino()) {
                    Some(first) if md.nlink() > 1 => {
                        std::fs::hard_link(first, &dst)
                            .map_err(|e| SetupError::io("link", &dst, e))?;
                    }
                    _ => {
                        copy_entry(&self.root.join(&r), &dst, &md)?;
                        self.links.insert(md.ino(), dst);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whiteouts for the entries that are gone, at the top-most gone path only.
    fn whiteouts(&mut self) -> Result<()> {
        let gone: Vec<PathBuf> = self
            .before
            .keys()
            .filter(|rel| std::fs::symlink_metadata(self.root.join(rel)).is_err())
            .cloned()
            .collect();
        for rel in gone {
            if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                let Ok(pmd) = std::fs::symlink_metadata(self.root.join(parent)) else {
                    continue; // the parent is gone too: its own whiteout covers this
                };
                if !pmd.is_dir() || self.replaced(parent, &pmd) {
                    continue; // replaced parent: opaque, or not a directory any more
                }
            }
            self.ensure_parents(&rel)?;
            create_whiteout(&self.upper.join(&rel)).map_err(cache_err)?;
        }
        Ok(())
    }
}
