//! What the init does differently inside a user namespace (rootless rbuild, see
//! `launch::userns`), where the kernel refuses some of what root may do:
//! - device nodes cannot be created (`mknod` needs CAP_MKNOD in the initial namespace): the
//!   host's `/dev/null`, `/dev/zero`… are bind-mounted instead, as rootless runc does;
//! - flags of mounts inherited from the host (`nosuid`, `nodev`, `noexec`, `ro`, atime) are
//!   locked: a bind remount must repeat them ([`locked_flags`]);
//! - mount options naming an id (`gid=5` of devpts) must name a mapped one ([`mount_data`]);
//! - overlayfs must be mounted with `userxattr` (`user.overlay.*` instead of `trusted.*`),
//!   which [`overlay_options`] adds.
//!
//! Everything here is a no-op in the initial user namespace. The init is another process
//! than rbuild: it takes its own view of its [`privileges`], once, when it starts.

use std::path::Path;
use std::sync::OnceLock;

use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::LinuxDevice;
use rbuild_types::Privileges;

use crate::shared::error::{Result, SetupError};
use crate::shared::paths::secure_join;

/// The init's privileges: [`detect`](crate::shared::privileges::detect)ed on the first call,
/// which the entry point makes before anything changes user.
pub(crate) fn privileges() -> Privileges {
    static PRIVILEGES: OnceLock<Privileges> = OnceLock::new();
    *PRIVILEGES.get_or_init(crate::shared::privileges::detect)
}

/// Whether this process runs in a non-initial user namespace.
pub(crate) fn active() -> bool {
    privileges().in_user_namespace()
}

/// Extra overlayfs mount options: `,userxattr` inside a user namespace.
pub(crate) fn overlay_options() -> &'static str {
    if active() {
        ",userxattr"
    } else {
        ""
    }
}

/// The value of overlayfs parameter `param` to use instead of `value`: with `userxattr`,
/// `redirect_dir=off` (which still follows redirects when the kernel's
/// `redirect_always_follow` is set) conflicts; `nofollow` neither creates nor follows them.
pub(crate) fn overlay_param<'a>(param: &str, value: &'a str) -> &'a str {
    if active() && param == "redirect_dir" && value == "off" {
        "nofollow"
    } else {
        value
    }
}

/// `setgroups(groups)`; where the user namespace denies setgroups (the single-id mapping)
/// a list of nothing but gid 0 is skipped (the namespace's root has no supplementary groups
/// to drop, the caller's own are unmapped there, and 0, the only id that exists, is already
/// its group), and any other list is an error naming the cause.
pub(crate) fn set_groups(groups: &[nix::unistd::Gid]) -> Result<()> {
    match nix::unistd::setgroups(groups) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) if active() && setgroups_denied() => {
            if groups.iter().all(|g| g.as_raw() == 0) {
                Ok(())
            } else {
                Err(SetupError::sys(
                    "setgroups (denied in a single-id user namespace)",
                    nix::errno::Errno::EPERM,
                ))
            }
        }
        Err(e) => Err(SetupError::sys("setgroups", e)),
    }
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// Bind-mounts the host's device node over an empty file for each device of the spec.
pub(crate) fn bind_devices(rootfs: &Path, devices: &[LinuxDevice]) -> Result<()> {
    for dev in devices {
        let target = secure_join(rootfs, dev.path())?;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&target)
            .map_err(|e| SetupError::io("create device mount point", &target, e))?;
        mount(
            Some(dev.path()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| SetupError::Mount {
            what: format!("bind host device {}", dev.path().display()),
            target: target.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The kernel's `ST_RELATIME` statfs flag (`linux/statfs.h`), which nix names for glibc only
/// (the static musl build needs it too).
const ST_RELATIME: FsFlags = FsFlags::from_bits_retain(0x1000);

/// The flags of the mount at `target` that a bind remount inside a user namespace must keep
/// (the kernel locks them on mounts inherited from a more privileged namespace); empty in
/// the initial user namespace.
pub(crate) fn locked_flags(target: &Path) -> MsFlags {
    if !active() {
        return MsFlags::empty();
    }
    let Ok(st) = statvfs(target) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (have, flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(have) {
            out |= flag;
        }
    }
    out
}

/// Filesystem mount data with `uid=`/`gid=` options dropped when that id is not mapped in
/// this user namespace (the single-id mapping has no gid 5 for devpts).
pub(crate) fn mount_data(data: &[String]) -> Vec<String> {
    if !active() {
        return data.to_vec();
    }
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let gid_map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    data.iter()
        .filter(|opt| {
            let (map, id) = if let Some(id) = opt.strip_prefix("uid=") {
                (&uid_map, id)
            } else if let Some(id) = opt.strip_prefix("gid=") {
                (&gid_map, id)
            } else {
                return true;
            };
            id.parse::<u32>().map_or(true, |id| is_mapped(map, id))
        })
        .cloned()
        .collect()
}

/// Whether `id` is inside one of the ranges of a `/proc/<pid>/{uid,gid}_map` text.
pub(crate) fn is_mapped(map: &str, id: u32) -> bool {
    map.lines().any(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        f.len() == 3 && u64::from(id) >= f[0] && u64::from(id) < f[0] + f[2]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ids() {
        let map = "         0       1000          1\n         1     100000      65536\n";
        assert!(is_mapped(map, 0));
        assert!(is_mapped(map, 5));
        assert!(is_mapped(map, 65536));
        assert!(!is_mapped(map, 65537));
        assert!(!is_mapped("0 1000 1\n", 5));
    }
}
