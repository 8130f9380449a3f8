//! Cache mounts (`RUN --mount=type=cache`): directories kept in the store across builds.
//!
//! ```text
//! <root>/cache-mounts/<sha256(id)>/       the directory a RUN sees at its target
//! <root>/cache-mounts/<sha256(id)>.lock   flock(2) file saying who uses it
//! ```
//!
//! Sharing, across threads and across rbuild processes sharing the store (every lease opens
//! its own descriptor of the lock file, so two RUNs of one process exclude each other exactly
//! as two processes do):
//! - [`CacheMountSharing::Shared`]: a shared lock; any number of RUNs use the directory at once.
//! - [`CacheMountSharing::Locked`]: an exclusive lock; a RUN waits until nobody else uses it
//!   (polling, so that the wait ends promptly when the build is cancelled).
//! - [`CacheMountSharing::Private`]: an exclusive lock if it is free at once; otherwise the RUN
//!   gets a fresh directory of its own under `tmp/`, removed when its lease drops.
//!
//! Invariants: a directory appears under `cache-mounts/` only complete (made under `tmp/` with
//! its mode and owner, seeded, then renamed into place), so a build killed while creating one
//! leaves at most a `tmp/` leftover. Contents are never part of a cache key, never part of a
//! layer, and survive `--no-cache`; only [`CacheMounts::prune`] (`prune --all`)
//! removes them, and only those nobody holds.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fs4::fs_std::FileExt;
use rbuild_types::Digest;

use crate::error::{io_err, CacheError};
use crate::fsutil;
use crate::store::Store;

/// How often a waiting lease retries its lock (and checks for cancellation).
const POLL: Duration = Duration::from_millis(20);

/// How concurrent RUNs share one cache mount (mirrors `RUN --mount=type=cache,sharing=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMountSharing {
    Shared,
    Private,
    Locked,
}

/// What a RUN asks of a cache mount. `mode`, `uid` and `gid` apply when the directory is
/// created; an existing directory is used as it is.
#[derive(Clone, Debug)]
pub struct CacheMountRequest<'a> {
    pub id: &'a str,
    pub sharing: CacheMountSharing,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Why a cache mount could not be leased.
#[derive(Debug, thiserror::Error)]
pub enum CacheMountError {
    #[error("cache mount {id:?}: {source}")]
    Store {
        id: String,
        #[source]
        source: CacheError,
    },
    #[error("cache mount {id:?}: canceled while waiting for another step to release it")]
    Canceled { id: String },
}

/// A cache mount in use. The directory at [`CacheMountLease::path`] is the RUN's while the lease
/// lives; dropping it releases the lock (and removes a private fresh directory).
#[derive(Debug)]
pub struct CacheMountLease {
    path: PathBuf,
    /// Holds the flock; `None` for a private fresh directory nobody else can see.
    _lock: Option<File>,
    /// A private fresh directory, removed on drop.
    throwaway: bool,
}

impl CacheMountLease {
    /// The host directory to mount at the RUN's target.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a private fresh directory (the shared one was in use).
    pub fn is_throwaway(&self) -> bool {
        self.throwaway
    }

    /// Apparent bytes of the files under the directory (as `rbuild du` counts them).
    pub fn size(&self) -> Result<u64, CacheError> {
        fsutil::tree_size(&self.path)
    }
}

impl Drop for CacheMountLease {
    fn drop(&mut self) {
        if self.throwaway {
            let _ = fsutil::remove_tree(&self.path);
        }
    }
}

/// One cache mount in the store, as `rbuild du` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheMountUsage {
    /// `sha256(id)` in hex: the directory name.
    pub name: String,
    /// Apparent bytes of its files.
    pub size: u64,
}

/// What [`CacheMounts::prune`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheMountPrune {
    pub removed: u64,
    /// Mounts left because a build holds them.
    pub in_use: u64,
    pub bytes: u64,
}

/// The cache mount directory `cache-mounts/`. Get one with [`Store::cache_mounts`].
#[derive(Clone, Copy, Debug)]
pub struct CacheMounts<'a> {
    pub(crate) store: &'a Store,
}

impl CacheMounts<'_> {
    fn dir(&self) -> PathBuf {
        self.store.root.join("cache-mounts")
    }

    /// Leases cache mount `req.id`, creating it on first use with the request's mode and owner,
    /// then filled by `seed` (which gets the new, empty directory and may change its mode and
    /// owner; it runs for a private fresh directory too). Waits as
    /// `req.sharing` says, giving up with [`CacheMountError::Canceled`] once `cancelled()`.
    pub fn lease(
        &self,
        req: &CacheMountRequest<'_>,
        cancelled: &dyn Fn() -> bool,
        seed: &dyn Fn(&Path) -> Result<(), CacheError>,
    ) -> Result<CacheMountLease, CacheMountError> {
        let wrap = |source| CacheMountError::Store {
            id: req.id.to_string(),
            source,
        };
        let dir = self.dir();
        fs::create_dir_all(&dir)
            .map_err(io_err("create directory", &dir))
            .map_err(wrap)?;
        let name = Digest::of(req.id.as_bytes()).hex().to_string();
        let path = dir.join(&name);
        let lock_path = dir.join(format!("{name}.lock"));
        let lock = crate::lock::open_lock_file(&lock_path).map_err(wrap)?;
        let try_lock = |f: &File| match req.sharing {
            CacheMountSharing::Shared => FileExt::try_lock_shared(f),
            CacheMountSharing::Private | CacheMountSharing::Locked => {
                FileExt::try_lock_exclusive(f)
            }
        };
        loop {
            if try_lock(&lock)
                .map_err(io_err("lock", &lock_path))
                .map_err(wrap)?
            {
                break;
            }
            if req.sharing == CacheMountSharing::Private {
                let fresh = self.fresh_dir(req, seed).map_err(wrap)?;
                return Ok(CacheMountLease {
                    path: fresh,
                    _lock: None,
                    throwaway: true,
                });
            }
            if cancelled() {
                return Err(CacheMountError::Canceled {
                    id: req.id.to_string(),
                });
            }
            std::thread::sleep(POLL);
        }
        if fs::symlink_metadata(&path).is_err() {
            let staged = self.fresh_dir(req, seed).map_err(wrap)?;
            // Another shared user may have published it meanwhile: equal ids, keep theirs.
            let published = fsutil::rename_noreplace(&staged, &path).map_err(wrap)?;
            if published {
                fsutil::fsync_dir(&dir).map_err(wrap)?;
            } else {
                fsutil::remove_tree(&staged).map_err(wrap)?;
            }
        }
        Ok(CacheMountLease {
            path,
            _lock: Some(lock),
            throwaway: false,
        })
    }

    /// Holds the published cache mount `id` shared, for reading it (a `--cache-to` exporting
    /// its contents): waits while a `locked` or `private` RUN holds it, so that nobody writes
    /// it meanwhile, unless another shared user does (as with any shared lease). `None` when
    /// the store has no such mount; nothing is created.
    pub fn hold(
        &self,
        id: &str,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<CacheMountLease>, CacheMountError> {
        let wrap = |source| CacheMountError::Store {
            id: id.to_string(),
            source,
        };
        let dir = self.dir();
        let name = Digest::of(id.as_bytes()).hex().to_string();
        let path = dir.join(&name);
        if !is_mount_dir(&path) {
            return Ok(None);
        }
        let lock_path = dir.join(format!("{name}.lock"));
        let lock = crate::lock::open_lock_file(&lock_path).map_err(wrap)?;
        while !FileExt::try_lock_shared(&lock)
            .map_err(io_err("lock", &lock_path))
            .map_err(wrap)?
        {
            if cancelled() {
                return Err(CacheMountError::Canceled { id: id.to_string() });
            }
            std::thread::sleep(POLL);
        }
        // Pruned while we waited.
        if !is_mount_dir(&path) {
            return Ok(None);
        }
        Ok(Some(CacheMountLease {
            path,
            _lock: Some(lock),
            throwaway: false,
        }))
    }

    /// A new directory under `tmp/` with the request's mode and owner, seeded.
    fn fresh_dir(
        &self,
        req: &CacheMountRequest<'_>,
        seed: &dyn Fn(&Path) -> Result<(), CacheError>,
    ) -> Result<PathBuf, CacheError> {
        let staged = loop {
            let p = self.store.tmp_dir.join(fsutil::unique_name("cache-mount"));
            match fs::create_dir(&p) {
                Ok(()) => break p,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("create directory", p)(e)),
            }
        };
        let made = (|| {
            std::os::unix::fs::chown(&staged, Some(req.uid), Some(req.gid))
                .map_err(io_err("chown", &staged))?;
            fs::set_permissions(&staged, fs::Permissions::from_mode(req.mode & 0o7777))
                .map_err(io_err("chmod", &staged))?;
            // Last: a seed may give the directory its source's mode and owner (BuildKit's
            // `from=` does).
            seed(&staged)
        })();
        match made {
            Ok(()) => Ok(staged),
            Err(e) => {
                let _ = fsutil::remove_tree(&staged);
                Err(e)
            }
        }
    }

    /// Every cache mount with its size, largest first.
    pub fn usage(&self) -> Result<Vec<CacheMountUsage>, CacheError> {
        let mut out = Vec::new();
        for p in fsutil::list_dir(&self.dir())? {
            if !is_mount_dir(&p) {
                continue;
            }
            out.push(CacheMountUsage {
                name: file_name(&p),
                size: fsutil::tree_size(&p)?,
            });
        }
        out.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// Removes every cache mount nobody holds (`rbuild prune --all`). Needs the store to
    /// itself, like [`crate::Gc::prune_all`]: fails with [`CacheError::Busy`] otherwise.
    pub fn prune(&self) -> Result<CacheMountPrune, CacheError> {
        self.store.with_exclusive(|| {
            let mut report = CacheMountPrune::default();
            for p in fsutil::list_dir(&self.dir())? {
                if !is_mount_dir(&p) {
                    continue;
                }
                let lock_path = p.with_extension("lock");
                let lock = crate::lock::open_lock_file(&lock_path)?;
                if !FileExt::try_lock_exclusive(&lock).map_err(io_err("lock", &lock_path))? {
                    report.in_use += 1;
                    continue;
                }
                report.bytes += fsutil::tree_size(&p)?;
                // Out of sight in one rename, then removed: a crash leaves only tmp/ litter.
                let doomed = self
                    .store
                    .tmp_dir
                    .join(fsutil::unique_name("cache-mount-prune"));
                fs::rename(&p, &doomed).map_err(io_err("rename", &p))?;
                fsutil::remove_tree(&doomed)?;
                let _ = fs::remove_file(&lock_path);
                report.removed += 1;
            }
            Ok(report)
        })
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A published mount directory (not its lock file).
fn is_mount_dir(p: &Path) -> bool {
    p.extension().is_none() && fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn req(id: &str, sharing: CacheMountSharing) -> CacheMountRequest<'_> {
        CacheMountRequest {
            id,
            sharing,
            mode: 0o755,
            uid: 0,
            gid: 0,
        }
    }

    fn never() -> bool {
        false
    }

    fn no_seed(_: &Path) -> Result<(), CacheError> {
        Ok(())
    }

    #[test]
    fn contents_persist_and_seed_runs_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let seeds = AtomicUsize::new(0);
        let seed = |p: &Path| -> Result<(), CacheError> {
            seeds.fetch_add(1, Ordering::SeqCst);
            fs::write(p.join("seeded"), b"x").map_err(io_err("write", p))
        };
        let a = store
            .cache_mounts()
            .lease(&req("go-build", CacheMountSharing::Shared), &never, &seed)
            .unwrap();
        fs::write(a.path().join("kept"), b"1").unwrap();
        let first = a.path().to_path_buf();
        drop(a);
        let b = store
            .cache_mounts()
            .lease(&req("go-build", CacheMountSharing::Shared), &never, &seed)
            .unwrap();
        assert_eq!(b.path(), first);
        assert!(b.path().join("kept").exists() && b.path().join("seeded").exists());
        assert_eq!(seeds.load(Ordering::SeqCst), 1);
        let usage = store.cache_mounts().usage().unwrap();
        assert_eq!(usage.len(), 1);
        assert_eq!(usage[0].size, 2);
    }

    #[test]
    fn private_in_use_gets_a_throwaway_dir() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = req("p", CacheMountSharing::Private);
        let a = store.cache_mounts().lease(&r, &never, &no_seed).unwrap();
        let b = store.cache_mounts().lease(&r, &never, &no_seed).unwrap();
        assert!(!a.is_throwaway() && b.is_throwaway());
        assert_ne!(a.path(), b.path());
        let fresh = b.path().to_path_buf();
        drop(b);
        assert!(!fresh.exists());
    }

    #[test]
    fn locked_waits_and_honours_cancel() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let r = req("l", CacheMountSharing::Locked);
        let held = store.cache_mounts().lease(&r, &never, &no_seed).unwrap();
        let err = store
            .cache_mounts()
            .lease(&r, &|| true, &no_seed)
            .unwrap_err();
        assert!(matches!(err, CacheMountError::Canceled { .. }), "{err}");
        let s2 = Arc::clone(&store);
        let waiter = std::thread::spawn(move || {
            let r = req("l", CacheMountSharing::Locked);
            s2.cache_mounts()
                .lease(&r, &never, &no_seed)
                .map(|l| l.path().to_path_buf())
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiter.is_finished());
        drop(held);
        assert!(waiter.join().unwrap().is_ok());
    }

    #[test]
    fn mode_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut r = req("m", CacheMountSharing::Shared);
        r.mode = 0o700;
        let a = store.cache_mounts().lease(&r, &never, &no_seed).unwrap();
        let mode = fs::metadata(a.path()).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        let path = a.path().to_path_buf();
        let report = store.cache_mounts().prune().unwrap();
        assert_eq!((report.removed, report.in_use), (0, 1));
        drop(a);
        let report = store.cache_mounts().prune().unwrap();
        assert_eq!((report.removed, report.in_use), (1, 0));
        assert!(!path.exists());
    }

    #[test]
    fn hold_finds_published_mounts_only_and_waits_for_locked_users() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        assert!(store.cache_mounts().hold("h", &never).unwrap().is_none());
        assert!(
            store.cache_mounts().usage().unwrap().is_empty(),
            "nothing made"
        );
        let r = req("h", CacheMountSharing::Locked);
        let held = store.cache_mounts().lease(&r, &never, &no_seed).unwrap();
        fs::write(held.path().join("f"), b"abc").unwrap();
        let err = store.cache_mounts().hold("h", &|| true).unwrap_err();
        assert!(matches!(err, CacheMountError::Canceled { .. }), "{err}");
        drop(held);
        let read = store.cache_mounts().hold("h", &never).unwrap().unwrap();
        assert_eq!(read.size().unwrap(), 3);
        assert!(read.path().join("f").exists());
    }

    #[test]
    fn failed_seed_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bad = |p: &Path| -> Result<(), CacheError> {
            Err(CacheError::NotFound {
                path: p.to_path_buf(),
            })
        };
        let r = req("bad", CacheMountSharing::Shared);
        assert!(store.cache_mounts().lease(&r, &never, &bad).is_err());
        assert!(store.cache_mounts().usage().unwrap().is_empty());
        assert!(fsutil::list_dir(&dir.path().join("tmp"))
            .unwrap()
            .is_empty());
    }
}
