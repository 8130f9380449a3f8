//! The sandbox's `/dev` (a tmpfs by then): the spec's device nodes ([`create_devices`]; bound
//! from the host in a user namespace, see `init::rootless`) and the standard symlinks
//! ([`dev_symlinks`]).

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chown, Gid, Uid};
use oci_spec::runtime::LinuxDevice;

use crate::init::rootless;
use crate::shared::error::{Result, SetupError};
use crate::shared::paths::secure_join;

/// Creates the spec's device nodes under the rootfs's /dev (a tmpfs by then).
/// In a user namespace (rootless) the host's nodes are bind-mounted instead.
pub fn create_devices(rootfs: &Path, devices: &[LinuxDevice]) -> Result<()> {
    if rootless::active() {
        return rootless::bind_devices(rootfs, devices);
    }
    // With no umask, mknod gives each node its mode exactly: no chmod afterwards.
    let umask = nix::sys::stat::umask(Mode::empty());
    let made = make_nodes(rootfs, devices);
    nix::sys::stat::umask(umask);
    made
}

fn make_nodes(rootfs: &Path, devices: &[LinuxDevice]) -> Result<()> {
    let me = rootless::privileges();
    let (me_uid, me_gid) = (Uid::from_raw(me.uid), Gid::from_raw(me.gid));
    for dev in devices {
        let target = secure_join(rootfs, dev.path())?;
        if let Some(parent) = target.parent() {
            // e.g. /dev/net for /dev/net/tun (an insecure RUN's device).
            std::fs::create_dir_all(parent)
                .map_err(|e| SetupError::io("create device directory", parent, e))?;
        }
        let kind = match dev.typ() {
            oci_spec::runtime::LinuxDeviceType::B => SFlag::S_IFBLK,
            oci_spec::runtime::LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let mode = dev.file_mode().unwrap_or(0o666);
        let rdev = makedev(dev.major() as u64, dev.minor() as u64);
        mknod(&target, kind, Mode::from_bits_truncate(mode), rdev)
            .map_err(|e| SetupError::io("mknod", &target, e.into()))?;
        if mode & !0o777 != 0 {
            // Set-id and sticky bits are not mknod's to set.
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                .map_err(|e| SetupError::io("chmod", &target, e))?;
        }
        // A new node is ours: chown only to someone else.
        let uid = dev.uid().map(Uid::from_raw).filter(|&u| u != me_uid);
        let gid = dev.gid().map(Gid::from_raw).filter(|&g| g != me_gid);
        if uid.is_some() || gid.is_some() {
            chown(&target, uid, gid).map_err(|e| SetupError::io("chown", &target, e.into()))?;
        }
    }
    Ok(())
}

/// The standard /dev symlinks (fd, stdin, stdout, stderr, ptmx).
pub fn dev_symlinks(rootfs: &Path) -> Result<()> {
    let dev = rootfs.join("dev");
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        let path = dev.join(link);
        match symlink(target, &path) {
            // Whatever is there already stays.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            made => made.map_err(|e| SetupError::io("symlink", &path, e))?,
        }
    }
    Ok(())
}
