//! `--isolation=chroot` (buildah's meaning), rbuild's side: for hosts that refuse namespaces
//! and mounts (an unprivileged CI pod), RUN gets no namespace of its own. Its root is the
//! copy-and-diff snapshotter's plain directory, which the init enters with `chroot(2)`
//! (`init::chroot_stage`); it shares the host's pid, network, IPC and UTS namespaces and
//! mounts. Where even `chroot` is refused (no CAP_SYS_CHROOT), the RUN fails with the kernel's
//! error: running it against the host's own root would write to the host.
//!
//! With no mounts, what a namespaced RUN gets by mounting is put into the root before the
//! copy is recorded ([`furnish`]), so that it is part of "before" and never of the layer
//! unless the command changes it: `/etc/hosts` and `/etc/resolv.conf` (the host's network's,
//! where the image has none or the init layer's empty one) and the device nodes `/dev/null`,
//! `zero`, `full`, `random`, `urandom` and `tty` (made with `mknod` where the kernel lets us;
//! otherwise empty files, over which the init binds the host's devices where it may mount,
//! as rootless). `/proc` and a read-only `/sys` (with the spec's
//! masked and read-only paths) are mounted by the init in a private mount namespace where
//! that is permitted, and are absent otherwise; `/dev/pts`, `/dev/shm` and `/dev/mqueue` are
//! absent (their empty mount points stay). What needs a namespace is refused
//! with a message naming it ([`refuse_unsupported`]): `RUN --mount` (a mount namespace) and
//! `--network=none` (a network namespace); the default network is the host's.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use rbuild_graph::NetworkMode;
use rbuild_ports::ExecRequest;

use crate::launch::spec::{EtcFiles, DEVICES};
use crate::shared::error::{Result, SetupError};
use crate::shared::paths::secure_join;

/// How RUN is isolated from the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Isolation {
    /// New mount, pid, IPC, UTS and network namespaces (and a user namespace rootless).
    #[default]
    Namespaces,
    /// A chroot in the host's namespaces: weaker (see the module's overview).
    Chroot,
}

impl Isolation {
    /// Parses `--isolation`: `default` (namespaces) or `chroot`.
    pub fn parse(value: &str) -> Option<Isolation> {
        match value {
            "default" => Some(Isolation::Namespaces),
            "chroot" => Some(Isolation::Chroot),
            _ => None,
        }
    }

    /// What the build says once when RUN is isolated this way (None: nothing to say).
    pub fn warning(self) -> Option<&'static str> {
        match self {
            Isolation::Namespaces => None,
            Isolation::Chroot => Some(
                "--isolation=chroot: RUN runs in a chroot without namespaces, a much weaker \
                 isolation: it shares the host's processes (it can see and signal them), \
                 network, IPC and hostname, a root RUN can leave the chroot, it has /proc and \
                 /sys only where mounts are permitted, and no RUN --mount; use it only where \
                 namespaces are refused",
            ),
        }
    }
}

/// Fails a RUN that needs a namespace chroot isolation does not make.
pub(crate) fn refuse_unsupported(req: &ExecRequest<'_>) -> Result<()> {
    if !req.mounts.is_empty() {
        return Err(SetupError::ChrootLacks {
            what: "RUN --mount",
            namespace: "mount",
        });
    }
    if req.op.network == NetworkMode::None {
        return Err(SetupError::ChrootLacks {
            what: "RUN --network=none",
            namespace: "network",
        });
    }
    Ok(())
}

/// Puts into the copied root `root` what the mounts of a namespaced RUN would provide (see the
/// module's overview); called before the copy is recorded.
pub(crate) fn furnish(root: &Path, etc: &EtcFiles) -> Result<()> {
    for (rel, generated) in [
        ("etc/hosts", &etc.hosts),
        ("etc/resolv.conf", &etc.resolv_conf),
    ] {
        let target = secure_join(root, Path::new(rel))?;
        let keep = std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_file() || m.len() > 0);
        if keep {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SetupError::io("mkdir", parent, e))?;
        }
        std::fs::copy(generated, &target).map_err(|e| SetupError::io("write", &target, e))?;
    }
    let dev = secure_join(root, Path::new("dev"))?;
    std::fs::create_dir_all(&dev).map_err(|e| SetupError::io("mkdir", &dev, e))?;
    for (path, major, minor) in DEVICES {
        let node = secure_join(root, Path::new(path))?;
        if std::fs::symlink_metadata(&node).is_ok() {
            continue;
        }
        let mode = Mode::from_bits_truncate(0o666);
        match mknod(
            &node,
            SFlag::S_IFCHR,
            mode,
            makedev(*major as u64, *minor as u64),
        ) {
            Ok(()) => {}
            // Refused (no CAP_MKNOD, a user namespace): an empty file, which the init binds
            // the host's device over where it may mount (`init::chroot_stage`).
            Err(nix::errno::Errno::EPERM | nix::errno::Errno::EACCES) => {
                std::fs::write(&node, b"").map_err(|e| SetupError::io("write", &node, e))?;
            }
            Err(e) => return Err(SetupError::sys("mknod device node", e)),
        }
        // The umask applies to mknod's and write's mode.
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| SetupError::io("chmod", &node, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_names() {
        assert_eq!(Isolation::parse("default"), Some(Isolation::Namespaces));
        assert_eq!(Isolation::parse("chroot"), Some(Isolation::Chroot));
        assert_eq!(Isolation::parse("oci"), None);
        assert!(Isolation::Chroot
            .warning()
            .is_some_and(|w| w.contains("weaker")));
        assert!(Isolation::Namespaces.warning().is_none());
    }

    #[test]
    fn furnish_keeps_the_images_files_and_fills_empty_ones() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(root.join("etc/hosts"), "10.0.0.1 mine\n").expect("hosts");
        std::fs::write(root.join("etc/resolv.conf"), "").expect("resolv.conf");
        let hosts = t.path().join("hosts");
        let resolv = t.path().join("resolv");
        std::fs::write(&hosts, "127.0.0.1 localhost\n").expect("gen hosts");
        std::fs::write(&resolv, "nameserver 192.0.2.1\n").expect("gen resolv");
        furnish(
            &root,
            &EtcFiles {
                hosts,
                resolv_conf: resolv,
            },
        )
        .expect("furnish");
        let read = |rel: &str| std::fs::read_to_string(root.join(rel)).expect("read");
        assert_eq!(read("etc/hosts"), "10.0.0.1 mine\n");
        assert_eq!(read("etc/resolv.conf"), "nameserver 192.0.2.1\n");
        assert!(root.join("dev").is_dir());
    }
}
