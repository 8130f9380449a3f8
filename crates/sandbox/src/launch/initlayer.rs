//! The init layer: a tiny overlay lower dir, placed **below** the image's layers, holding the
//! mount points every run needs (`/proc`, `/dev`, `/sys`, `/etc/hosts`, `/etc/resolv.conf`),
//! like Docker's "-init" layer.
//!
//! Because the mount points already exist in the merged root, the setup creates nothing in the
//! upper dir, so nothing has to be removed from the layer afterwards and no directory of the
//! image (`/etc`) is copied up just to hold a mount point. Being the lowest layer, it only fills
//! gaps: whatever the image has at those paths (a file, a symlink, an opaque `/etc`) wins, and
//! the setup then falls back to creating the mount point itself (see
//! `init::placeholders::PlaceholderTracker`).

use std::path::Path;

use crate::shared::error::{Result, SetupError};

/// Directories of the init layer (mode 0755).
const DIRS: &[&str] = &["proc", "dev", "sys", "etc"];

/// Empty files of the init layer (mode 0644), the targets of the /etc bind mounts.
const FILES: &[&str] = &["etc/hosts", "etc/resolv.conf"];

/// Creates the init layer at `dir` (which must not exist).
pub fn create(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o755);
    builder
        .create(dir)
        .map_err(|e| SetupError::io("mkdir", dir, e))?;
    for d in DIRS {
        let p = dir.join(d);
        builder
            .create(&p)
            .map_err(|e| SetupError::io("mkdir", &p, e))?;
        // Whatever the umask: these modes show in the root of an image that lacks the dirs.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| SetupError::io("chmod", &p, e))?;
    }
    for f in FILES {
        let p = dir.join(f);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&p)
            .map_err(|e| SetupError::io("create", &p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn holds_every_mount_point() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("init");
        create(&dir).expect("create");
        for d in DIRS {
            assert!(dir.join(d).is_dir(), "{d}");
        }
        for f in FILES {
            let meta = std::fs::metadata(dir.join(f)).expect("file");
            assert!(meta.is_file() && meta.len() == 0, "{f}");
        }
        // Every destination of the spec's mounts that is not under /dev is in the layer.
        let etc = crate::launch::spec::EtcFiles {
            hosts: "/h".into(),
            resolv_conf: "/r".into(),
        };
        let op = rbuild_graph::ExecOp {
            platform: rbuild_types::Platform::host(),
            args: vec!["true".into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            network: rbuild_graph::NetworkMode::None,
            mounts: vec![],
            security: Default::default(),
            proxy_env: Default::default(),
            meta: Default::default(),
        };
        let spec = crate::launch::spec::build_spec(&op, Path::new("/r"), &etc).expect("spec");
        for m in spec.mounts().iter().flatten() {
            let dest = m.destination();
            if dest.starts_with("/dev/") {
                continue;
            }
            let rel = dest.strip_prefix("/").expect("absolute");
            assert!(dir.join(rel).exists(), "{}", dest.display());
        }
        assert!(create(&dir).is_err(), "an existing dir is refused");
        let mode = std::fs::metadata(dir.join("etc"))
            .expect("etc")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }
}
