//! Joining a container path onto the rootfs without ever leaving it: symlinks inside the rootfs
//! are resolved as if the rootfs were `/` (absolute targets and `..` stay inside). Used for
//! every mount point, so an image whose `/etc/hosts` is a symlink to a host path cannot make
//! the setup mount over a host file.

use std::path::{Component, Path, PathBuf};

use crate::error::{Result, SetupError};

/// The most symlinks followed while resolving one path (as the kernel's ELOOP limit).
const MAX_LINKS: usize = 40;

/// `root` joined with `path` (absolute or relative, taken inside `root`), with every symlink
/// met on the way resolved inside `root`. Components that do not exist are appended as they are.
pub fn secure_join(root: &Path, path: &Path) -> Result<PathBuf> {
    // Components are looked up relative to a descriptor of `root`, so that each lookup walks
    // only the path inside the root, not the root's own (long) path again. A lookup that
    // fails counts as "not a symlink", as a missing `root` does (the result is then `root`
    // joined with the path, as before).
    let root_dir = std::fs::File::open(root).ok();
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = components(path);
    pending.reverse();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let inside = resolved
            .iter()
            .fold(PathBuf::new(), |p, c| p.join(c))
            .join(&part);
        if !is_symlink(root_dir.as_ref(), root, &inside) {
            resolved.push(part);
            continue;
        }
        let candidate = root.join(&inside);
        links += 1;
        if links > MAX_LINKS {
            return Err(SetupError::io(
                "resolve",
                candidate,
                std::io::Error::from_raw_os_error(libc::ELOOP),
            ));
        }
        let target = std::fs::read_link(&candidate)
            .map_err(|e| SetupError::io("read link", &candidate, e))?;
        if target.is_absolute() {
            resolved.clear();
        }
        let mut more = components(&target);
        more.reverse();
        pending.extend(more);
    }
    Ok(resolved.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

/// Whether `inside` (relative, no `..`) is a symlink under `root`: looked up relative to
/// `root_dir` (a descriptor of `root`) when there is one.
fn is_symlink(root_dir: Option<&std::fs::File>, root: &Path, inside: &Path) -> bool {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let Some(dir) = root_dir else {
        return std::fs::symlink_metadata(root.join(inside))
            .is_ok_and(|m| m.file_type().is_symlink());
    };
    let Ok(name) = std::ffi::CString::new(inside.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: fstatat writes into the zeroed struct we own; `name` is NUL-terminated.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        ) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFLNK
    }
}

/// The normal components of `path`, with `..` kept and `/` and `.` dropped.
fn components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/etc")).expect("mkdir");
        symlink("/real/etc", root.join("etc")).expect("symlink");
        symlink("../../../../outside", root.join("real/etc/hosts")).expect("symlink");
        assert_eq!(
            secure_join(root, Path::new("/etc/resolv.conf")).expect("join"),
            root.join("real/etc/resolv.conf")
        );
        assert_eq!(
            secure_join(root, Path::new("/etc/hosts")).expect("join"),
            root.join("outside")
        );
        assert_eq!(
            secure_join(root, Path::new("/../../proc")).expect("join"),
            root.join("proc")
        );
    }

    #[test]
    fn symlink_loops_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        symlink("b", dir.path().join("a")).expect("symlink");
        symlink("a", dir.path().join("b")).expect("symlink");
        assert!(secure_join(dir.path(), Path::new("/a/x")).is_err());
    }
}
