//! Removing the setup's placeholders from the upper dir after a run. Mount points the setup had
//! to create (`/proc`, `/etc/hosts`, their parent dirs, copied-up parents…) must never end up in
//! the layer, but real changes the command made must stay: an entry is removed only if its
//! stamp (mode, owner, size, mtime) is exactly what it was after the setup and, for a
//! directory, it is empty once its own placeholders are gone.

use std::path::{Path, PathBuf};

use crate::shared::error::{Result, SetupError};
use crate::shared::protocol::Stamp;

/// Removes the untouched placeholders listed (deepest first) from `upper`.
pub fn remove_placeholders(upper: &Path, placeholders: &[(PathBuf, Stamp)]) -> Result<()> {
    // Decide before removing anything: removing a child changes its parent's mtime.
    let untouched: Vec<&PathBuf> = placeholders
        .iter()
        .filter(|(rel, stamp)| {
            std::fs::symlink_metadata(upper.join(rel))
                .map(|meta| Stamp::of(&meta) == *stamp)
                .unwrap_or(false)
        })
        .map(|(rel, _)| rel)
        .collect();
    let mut ordered = untouched;
    ordered.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for rel in ordered {
        let path = upper.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let res = if meta.is_dir() {
            match std::fs::remove_dir(&path) {
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(()),
                other => other,
            }
        } else {
            std::fs::remove_file(&path)
        };
        res.map_err(|e| SetupError::io("remove placeholder", &path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(path: &Path) -> Stamp {
        Stamp::of(&std::fs::symlink_metadata(path).expect("stat"))
    }

    #[test]
    fn removes_untouched_and_keeps_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let up = dir.path();
        std::fs::create_dir_all(up.join("etc")).expect("mkdir");
        std::fs::write(up.join("etc/hosts"), "").expect("write");
        std::fs::create_dir(up.join("proc")).expect("mkdir");
        std::fs::create_dir(up.join("sys")).expect("mkdir");
        let list = vec![
            (PathBuf::from("etc/hosts"), stamp(&up.join("etc/hosts"))),
            (PathBuf::from("proc"), stamp(&up.join("proc"))),
            (PathBuf::from("sys"), stamp(&up.join("sys"))),
            (PathBuf::from("etc"), stamp(&up.join("etc"))),
        ];
        // The command put a real file in /sys's placeholder dir (as if it were not mounted).
        std::fs::write(up.join("sys/keep"), "x").expect("write");
        remove_placeholders(up, &list).expect("cleanup");
        assert!(!up.join("etc").exists());
        assert!(!up.join("proc").exists());
        assert!(up.join("sys/keep").exists());
    }
}
