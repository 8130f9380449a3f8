//! Deferred removal of staging leftovers: after a commit, the staging directory (the overlay
//! work dir with what overlayfs left in it) is removed when the store handle syncs or is
//! dropped, in one batch, instead of before `Snapshots::commit` returns.
//!
//! Removing it at once cost each RUN 0.2–0.4 ms, and removing it from a background thread
//! slowed the next `Snapshots::prepare` as much (both change `tmp/` and compete for the CPUs),
//! so the leftovers, a few empty directories per snapshot, wait for the end of the build.
//!
//! Invariant: everything handed to [`Janitor::remove_later`] is gone once
//! [`Janitor::settle`] returns, and when the handle is dropped. Should the process die first,
//! the leftovers are in `tmp/`, which the next exclusive open empties.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::fsutil;

/// The deferred removals of one store handle.
#[derive(Debug, Default)]
pub(crate) struct Janitor {
    paths: Mutex<Vec<PathBuf>>,
}

impl Janitor {
    /// Removes the tree at `path` when the handle next settles.
    pub(crate) fn remove_later(&self, path: PathBuf) {
        self.paths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path);
    }

    /// Removes everything handed over so far (best effort: what cannot be removed now, the
    /// next exclusive open removes).
    pub(crate) fn settle(&self) {
        let paths = std::mem::take(&mut *self.paths.lock().unwrap_or_else(|e| e.into_inner()));
        for path in paths {
            let _ = fsutil::remove_tree(&path);
        }
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        self.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_and_drop_remove_everything_handed_over() {
        let t = tempfile::tempdir().unwrap();
        let janitor = Janitor::default();
        let dirs: Vec<PathBuf> = (0..5).map(|i| t.path().join(i.to_string())).collect();
        for d in &dirs {
            std::fs::create_dir_all(d.join("a/b")).unwrap();
            std::fs::write(d.join("a/b/f"), "x").unwrap();
            janitor.remove_later(d.clone());
        }
        assert!(
            dirs.iter().all(|d| d.exists()),
            "nothing removed before settling"
        );
        janitor.settle();
        assert!(dirs.iter().all(|d| !d.exists()));
        let last = t.path().join("last");
        std::fs::create_dir(&last).unwrap();
        janitor.remove_later(last.clone());
        drop(janitor);
        assert!(!last.exists(), "dropping the janitor removes what is left");
    }
}
