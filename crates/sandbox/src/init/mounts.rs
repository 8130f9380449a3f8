//! The init's mounts inside its new mount namespace, after the root (`init::root`): the
//! spec's mounts ([`mount_one`], with runc-style option parsing, [`parse_options`]), masked
//! and read-only paths, and `pivot_root` ([`pivot_into`]); [`make_private`] first, so that
//! nothing propagates back to the host. Mount points the setup has to create are recorded by
//! the [`PlaceholderTracker`] so they can be removed from the layer after the run.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Mount;

use crate::init::placeholders::PlaceholderTracker;
use crate::init::rootless;
use crate::shared::error::{Result, SetupError};
use crate::shared::paths::secure_join;

/// Mount flags and data parsed from an OCI mount's option list.
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: MsFlags,
    pub data: Vec<String>,
}

/// Parses OCI mount options the way runc does: known flag names become `MsFlags`, propagation
/// names are applied in a second call, everything else is filesystem data.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
    };
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let base = match opt.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                let rec = if opt.starts_with('r') {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                out.propagation |= base | rec;
                continue;
            }
            _ => {
                out.data.push(opt.clone());
                continue;
            }
        };
        out.flags = (out.flags | set) & !clear;
    }
    out
}

/// Makes every mount in this (new) mount namespace private, recursively, so nothing mounted
/// here propagates back to the host.
pub(crate) fn make_private() -> Result<()> {
    crate::shared::propagation::make_rprivate()
        .map_err(|e| mount_err("rprivate", Path::new("/"), e))
}

fn mount_err(what: impl Into<String>, target: &Path, source: nix::errno::Errno) -> SetupError {
    SetupError::Mount {
        what: what.into(),
        target: target.to_path_buf(),
        source,
    }
}

/// Performs one OCI mount under the rootfs.
pub fn mount_one(m: &Mount, tracker: &mut PlaceholderTracker) -> Result<()> {
    let typ = m.typ().clone().unwrap_or_default();
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let is_bind = typ == "bind" || opts.flags.contains(MsFlags::MS_BIND);
    let file = is_bind && !source.is_dir();
    let target = tracker.ensure(m.destination(), file)?;
    let what = format!("{typ} {}", source.display());
    if is_bind {
        let rec = opts.flags & MsFlags::MS_REC;
        mount(
            Some(&source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .map_err(|e| mount_err(&what, &target, e))?;
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
        if !extra.is_empty() {
            mount(
                None::<&str>,
                &target,
                None::<&str>,
                extra | rootless::locked_flags(&target) | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .map_err(|e| mount_err(format!("remount {what}"), &target, e))?;
        }
    } else {
        let data = rootless::mount_data(&opts.data).join(",");
        mount(
            Some(&source),
            &target,
            Some(typ.as_str()),
            opts.flags,
            if data.is_empty() {
                None
            } else {
                Some(data.as_str())
            },
        )
        .map_err(|e| mount_err(&what, &target, e))?;
    }
    if !opts.propagation.is_empty() {
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            opts.propagation,
            None::<&str>,
        )
        .map_err(|e| mount_err(format!("set propagation of {what}"), &target, e))?;
    }
    Ok(())
}

/// Hides each masked path: directories get an empty read-only tmpfs, files /dev/null.
pub fn mask_paths(rootfs: &Path, masked: &[String]) -> Result<()> {
    let null = rootfs.join("dev/null");
    for p in masked {
        let target = secure_join(rootfs, Path::new(p))?;
        let Ok(meta) = std::fs::symlink_metadata(&target) else {
            continue;
        };
        let res = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some(&null),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        res.map_err(|e| mount_err(format!("mask {p}"), &target, e))?;
    }
    Ok(())
}

/// Makes each read-only path a read-only bind mount of itself.
pub fn readonly_paths(rootfs: &Path, paths: &[String]) -> Result<()> {
    for p in paths {
        let target = secure_join(rootfs, Path::new(p))?;
        if std::fs::symlink_metadata(&target).is_err() {
            continue;
        }
        mount(
            Some(&target),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| mount_err(format!("bind {p}"), &target, e))?;
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            rootless::locked_flags(&target)
                | MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| mount_err(format!("remount read-only {p}"), &target, e))?;
    }
    Ok(())
}

/// Makes `rootfs` the root of the mount namespace and detaches the old root.
pub fn pivot_into(rootfs: &Path) -> Result<()> {
    std::env::set_current_dir(rootfs).map_err(|e| SetupError::io("chdir", rootfs, e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| mount_err("pivot_root", rootfs, e))?;
    // The old root is now stacked on top of the new one at "/": make it private so the
    // detach does not propagate, then drop it.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| mount_err("make old root private", rootfs, e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| mount_err("detach old root", rootfs, e))?;
    std::env::set_current_dir("/").map_err(|e| SetupError::io("chdir", "/", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_table() {
        let o = opts(&["nosuid", "noexec", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        let o = opts(&["rbind", "ro", "rprivate"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        let o = opts(&["ro", "rw", "slave"]);
        assert_eq!(o.flags, MsFlags::empty());
        assert_eq!(o.propagation, MsFlags::MS_SLAVE);
    }
}
