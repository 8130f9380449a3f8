//! [`PlaceholderTracker`]: remembers which upper-dir entries the setup created as mount points
//! (or their parents), so that the init can report them and rbuild remove them from the layer
//! (`launch::remove_placeholders`) unless the command changed them.

use std::path::{Path, PathBuf};

use crate::shared::error::{Result, SetupError};
use crate::shared::paths::secure_join;
use crate::shared::protocol::Stamp;

/// Remembers which upper-dir entries did not exist before the setup created mount points, so
/// they can be reported as placeholders.
#[derive(Debug)]
pub struct PlaceholderTracker {
    rootfs: PathBuf,
    upper: PathBuf,
    candidates: Vec<PathBuf>,
}

impl PlaceholderTracker {
    pub fn new(rootfs: &Path, upper: &Path) -> Self {
        PlaceholderTracker {
            rootfs: rootfs.to_path_buf(),
            upper: upper.to_path_buf(),
            candidates: Vec::new(),
        }
    }

    /// The rootfs this tracker creates mount points under.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// Notes every prefix of `target` (a path under the rootfs) that is not yet in the upper dir.
    fn note(&mut self, target: &Path) {
        let Ok(rel) = target.strip_prefix(&self.rootfs) else {
            return;
        };
        let mut prefix = PathBuf::new();
        for c in rel.components() {
            prefix.push(c);
            if std::fs::symlink_metadata(self.upper.join(&prefix)).is_err()
                && !self.candidates.contains(&prefix)
            {
                self.candidates.push(prefix.clone());
            }
        }
    }

    /// The noted entries that now exist in the upper dir, with their current stamps, deepest
    /// first.
    pub fn placeholders(&self) -> Vec<(PathBuf, Stamp)> {
        let mut out: Vec<(PathBuf, Stamp)> = self
            .candidates
            .iter()
            .filter_map(|rel| {
                let meta = std::fs::symlink_metadata(self.upper.join(rel)).ok()?;
                Some((rel.clone(), Stamp::of(&meta)))
            })
            .collect();
        out.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        out
    }

    /// Makes sure `dest` (a container path) exists under the rootfs as a directory, or as a
    /// file when `file` is set, and returns its host path.
    pub fn ensure(&mut self, dest: &Path, file: bool) -> Result<PathBuf> {
        let target = secure_join(&self.rootfs, dest)?;
        if std::fs::symlink_metadata(&target).is_ok() {
            return Ok(target);
        }
        self.note(&target);
        let dir = if file {
            target.parent().unwrap_or(&self.rootfs).to_path_buf()
        } else {
            target.clone()
        };
        std::fs::create_dir_all(&dir).map_err(|e| SetupError::io("create mount point", &dir, e))?;
        if file {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&target)
                .map_err(|e| SetupError::io("create mount point", &target, e))?;
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_reports_new_entries_deepest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Without an overlay, rootfs and upper are the same directory.
        let root = dir.path();
        std::fs::create_dir(root.join("etc")).expect("mkdir");
        let mut t = PlaceholderTracker::new(root, root);
        t.ensure(Path::new("/etc/hosts"), true).expect("ensure");
        t.ensure(Path::new("/proc"), false).expect("ensure");
        t.ensure(Path::new("/a/b"), false).expect("ensure");
        let names: Vec<PathBuf> = t.placeholders().into_iter().map(|(p, _)| p).collect();
        assert_eq!(names.len(), 4);
        assert!(names[0] == Path::new("etc/hosts") || names[0] == Path::new("a/b"));
        assert!(!names.contains(&PathBuf::from("etc")));
    }
}
