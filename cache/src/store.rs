//! The [`Store`] handle: opening a store root, its directory layout, its locks and its
//! durability, and one accessor per role. Each role is a small type in its own module that
//! borrows the handle: a directory (`blobs`, `snapshots`, `logs`, `cache_mounts`), a table of
//! the index database (`index`, `steps`, `layer_info`, `tags`, `resolved`, `layer_blobs`, `blob_sources`, `lazy_layers`, `repo_digests`), or
//! maintenance (`gc`, `usage`, `space`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::blob_sources::BlobSources;
use crate::blobs::Blobs;
use crate::cache_mounts::CacheMounts;
use crate::copy_donors::CopyDonors;
use crate::db::IndexDb;
use crate::durability::{self, Pending};
use crate::error::{io_err, CacheError};
use crate::fsutil;
use crate::gc::Gc;
use crate::index::CacheIndex;
use crate::janitor::Janitor;
use crate::layer_blobs::LayerBlobs;
use crate::layer_info::LayerInfos;
use crate::lazy_layers::LazyLayers;
use crate::lock::StoreLock;
use crate::logs::Logs;
use crate::repo_digests::RepoDigests;
use crate::resolved::Resolved;
use crate::snapshots::Snapshots;
use crate::space::Space;
use crate::steps::Steps;
use crate::tables;
use crate::tags::Tags;
use crate::usage::Usage;

/// A store rooted at one directory. `Send + Sync`; share it with `Arc`.
///
/// Layout under the root:
/// ```text
/// blobs/sha256/<hex>   content-addressed blobs, published by rename once verified
/// snapshots/<hex>/     unpacked layers (overlayfs upper-dir format), published by rename
/// tmp/                 staging for both (same filesystem, so publishing is a rename)
/// index.redb           cache index, layer info, tags, resolved references, …
/// logs/<build>/        every step's full output
/// cache-mounts/        `RUN --mount=type=cache` directories
/// lock, index.lock     flock(2) lock files (see the `lock` module)
/// ```
#[derive(Debug)]
pub struct Store {
    pub(crate) root: PathBuf,
    pub(crate) blobs_dir: PathBuf,
    pub(crate) snapshots_dir: PathBuf,
    pub(crate) tmp_dir: PathBuf,
    lock: StoreLock,
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
            lock,
            index: IndexDb::new(&root.join("index.redb"), &root.join("index.lock"))?,
        };
        tables::create(&store.index)?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes every snapshot this handle committed durable (one `syncfs`; see the `durability`
    /// module) and removes their staging leftovers, then every index commit made without an
    /// fsync (module `db`). Also done when the handle is dropped.
    pub fn sync(&self) -> Result<(), CacheError> {
        self.janitor.settle();
        self.pending.sync()?;
        self.index.flush()
    }

    /// Runs `f` holding the store lock exclusively (destructive maintenance). Fails with
    /// [`CacheError::Busy`] without waiting if another process has the store open.
    pub(crate) fn with_exclusive<T>(
        &self,
        f: impl FnOnce() -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        self.lock.with_exclusive(&self.root, f)
    }

    /// Content-addressed blobs (`blobs/sha256/`).
    pub fn blobs(&self) -> Blobs<'_> {
        Blobs {
            dir: &self.blobs_dir,
            tmp: &self.tmp_dir,
        }
    }

    /// Unpacked layers (`snapshots/`): prepare, commit, replace, retract.
    pub fn snapshots(&self) -> Snapshots<'_> {
        Snapshots { store: self }
    }

    /// The cache index: cache key → the result of the step (table `cache`).
    pub fn index(&self) -> CacheIndex<'_> {
        CacheIndex { db: &self.index }
    }

    /// What each step was keyed on the last time it ran (table `steps`).
    pub fn steps(&self) -> Steps<'_> {
        Steps { db: &self.index }
    }

    /// A snapshot's tar form, its diff_id and size (table `layer_info`).
    pub fn layer_info(&self) -> LayerInfos<'_> {
        LayerInfos { db: &self.index }
    }

    /// Image names → manifests (table `tags`).
    pub fn tags(&self) -> Tags<'_> {
        Tags { db: &self.index }
    }

    /// Image references → what they last resolved to (table `resolved`).
    pub fn resolved(&self) -> Resolved<'_> {
        Resolved { db: &self.index }
    }

    /// diff_id → the blob a pulled or loaded layer is stored as (table `layer_blobs`).
    pub fn layer_blobs(&self) -> LayerBlobs<'_> {
        LayerBlobs { db: &self.index }
    }

    /// blob digest → the registry repositories it was pulled from (table `blob_sources`).
    pub fn blob_sources(&self) -> BlobSources<'_> {
        BlobSources { db: &self.index }
    }

    /// snapshot id → the blob a not-yet-unpacked layer is unpacked from (table `lazy_layers`).
    pub fn lazy_layers(&self) -> LazyLayers<'_> {
        LazyLayers { db: &self.index }
    }

    /// stored manifest → the registry repositories holding it, with the digest there (table
    /// `repo_digests`).
    pub fn repo_digests(&self) -> RepoDigests<'_> {
        RepoDigests { db: &self.index }
    }

    /// Every build's step logs (`logs/`).
    pub fn logs(&self) -> Logs<'_> {
        Logs { root: &self.root }
    }

    /// Which snapshot an earlier run of a COPY made, for reuse (`copy-donors/`).
    pub fn copy_donors(&self) -> CopyDonors<'_> {
        CopyDonors { root: &self.root }
    }

    /// `RUN --mount=type=cache` directories (`cache-mounts/`).
    pub fn cache_mounts(&self) -> CacheMounts<'_> {
        CacheMounts { store: self }
    }

    /// Garbage collection: `prune` by options, `prune_all` from the tags.
    pub fn gc(&self) -> Gc<'_> {
        Gc { store: self }
    }

    /// What uses the store's space.
    pub fn usage(&self) -> Usage<'_> {
        Usage { store: self }
    }

    /// Room on the store's filesystem.
    pub fn space(&self) -> Space<'_> {
        Space { root: &self.root }
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
