//! Where a layer entry may be written: no existing symlink anywhere along the way inside the
//! destination (names are sanitized before, by `rbuild_archive`: no absolute paths, no `..`).

use std::path::Path;

use crate::OciError;

/// Checks that no ancestor of `rel` under `dest` is a symlink (so writing `dest/rel` cannot
/// land outside `dest`), creating missing ancestors as directories (mode 0755).
pub fn prepare_parents(dest: &Path, rel: &Path, entry: &str) -> Result<(), OciError> {
    let mut cur = dest.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for c in parent.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(OciError::Escape {
                    entry: entry.to_string(),
                    reason: "goes through a symlink",
                })
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(OciError::Io {
                    op: "create parent directory",
                    path: cur,
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "a non-directory is in the way",
                    ),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&cur).map_err(OciError::io("create directory", &cur))?;
            }
            Err(e) => {
                return Err(OciError::Io {
                    op: "stat",
                    path: cur,
                    source: e,
                })
            }
        }
    }
    Ok(())
}
