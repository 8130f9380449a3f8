//! Validating entry names of a layer being unpacked: no absolute paths, no `..`, and no
//! existing symlink anywhere along the way inside the destination.

use std::path::{Component, Path, PathBuf};

use crate::OciError;

/// Normalises an entry name to a relative path of normal components (`./a//b/` → `a/b`).
/// Rejects absolute names and `..`. The empty result means the root itself.
pub fn clean_entry_name(entry: &Path) -> Result<PathBuf, OciError> {
    let display = entry.to_string_lossy().into_owned();
    let mut out = PathBuf::new();
    for c in entry.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(OciError::Escape {
                    entry: display,
                    reason: "contains a \"..\" component",
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(OciError::Escape {
                    entry: display,
                    reason: "is an absolute path",
                })
            }
        }
    }
    Ok(out)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_and_rejects() {
        assert_eq!(
            clean_entry_name(Path::new("./a//b/")).unwrap(),
            PathBuf::from("a/b")
        );
        assert!(clean_entry_name(Path::new("../x")).is_err());
        assert!(clean_entry_name(Path::new("a/../../x")).is_err());
        assert!(clean_entry_name(Path::new("/etc/passwd")).is_err());
    }
}
