//! The [`Store`] handle: opening a store root, its directory layout and its locks. The
//! operations live in their own modules (`blobs`, `snapshots`, `index`, `prune`) as further
//! `impl Store` blocks.

use std::fs;
use std::path::{Path, PathBuf};

use crate::db::IndexDb;
use crate::durability::{self, Pending};
use crate::error::{io_err, CacheError};
use crate::fsutil;
use crate::janitor::Janitor;
use crate::lock::StoreLock;

/// A store rooted at one directory. `Send + Sync`; share it with `Arc`.
///
/// Layout under the root:
/// ```text
/// blobs/sha256/<hex>   content-addressed blobs, published by rename once verified
/// snapshots/<hex>/     unpacked layers (overlayfs upper-dir format), published by rename
/// tmp/                 staging for both (same filesystem, so publishing is a rename)
/// index.redb           cache index, layer info, tags, resolved references
/// lock, index.lock     flock(2) lock files (see the `lock` module)
/// ```
#[derive(Debug)]
pub struct Store {
    pub(crate) root: PathBuf,
    pub(crate) blobs_dir: PathBuf,
    pub(crate) snapshots_dir: PathBuf,
    pub(crate) tmp_dir: PathBuf,
    pub(crate) db_path: PathBuf,
    pub(crate) lock: StoreLock,
    pub(crate) index: IndexDb,
    /// Snapshots published but not yet synced (see the `durability` module).
    pub(crate) pending: Pending,
    /// Committed snapshots' staging leftovers, removed when the handle syncs.
    pub(crate) janitor: Janitor,
}

impl Store {
    /// Opens (creating if needed) the store at `root`. When no other process has the store
    /// open, leftovers of killed processes in `tmp/` are removed.
    pub fn open(root: &Path) -> Result<Store, CacheError> {
        let blobs_dir = root.join("blobs").join("sha256");
        let snapshots_dir = root.join("snapshots");
        let tmp_dir = root.join("tmp");
        for dir in [&blobs_dir, &snapshots_dir, &tmp_dir] {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        let lock = StoreLock::acquire(&root.join("lock"), || clean_tmp(&tmp_dir, &snapshots_dir))?;
        let store = Store {
            root: root.to_path_buf(),
            blobs_dir,
            pending: Pending::new(&tmp_dir, &snapshots_dir),
            janitor: Janitor::default(),
            snapshots_dir,
            tmp_dir,
            db_path: root.join("index.redb"),
            lock,
            index: IndexDb::new(&root.join("index.redb"), &root.join("index.lock"))?,
        };
        store.init_index()?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes every snapshot this handle committed durable (one `syncfs`; see the `durability`
    /// module) and removes their staging leftovers. Also done when the handle
    /// is dropped.
    pub fn sync(&self) -> Result<(), CacheError> {
        self.janitor.settle();
        self.pending.sync()
    }
}

/// Removes every entry of the staging directory, first removing the snapshots that journals
/// left by other processes list as possibly not durable. Only called while holding the store
/// lock exclusively (nobody else can be staging anything) and with this handle's own
/// snapshots synced.
pub(crate) fn clean_tmp(tmp_dir: &Path, snapshots_dir: &Path) -> Result<(), CacheError> {
    for entry in fsutil::list_dir(tmp_dir)? {
        if durability::is_journal(&entry) {
            durability::recover(&entry, snapshots_dir)?;
        } else {
            fsutil::remove_tree(&entry)?;
        }
    }
    Ok(())
}
