//! The init's filesystem setup inside the new mount namespace: the overlay root, the spec's
//! mounts (with runc-style option parsing), device nodes, /dev symlinks, masked and read-only
//! paths, and `pivot_root`. Mount points the setup has to create are recorded by
//! [`PlaceholderTracker`] so they can be removed from the layer after the run.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chown, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, Mount};

use crate::shared::error::{Result, SetupError};
use crate::shared::paths::secure_join;
use crate::shared::protocol::Stamp;

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

/// Makes every mount in this (new) mount namespace private, recursively, so nothing mounted
/// here propagates back to the host.
pub(crate) fn make_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
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
                extra
                    | crate::init::rootless::locked_flags(&target)
                    | MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .map_err(|e| mount_err(format!("remount {what}"), &target, e))?;
        }
    } else {
        let data = crate::init::rootless::mount_data(&opts.data).join(",");
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

/// Creates the spec's device nodes under the rootfs's /dev (a tmpfs by then).
/// In a user namespace (rootless) the host's nodes are bind-mounted instead.
pub fn create_devices(rootfs: &Path, devices: &[LinuxDevice]) -> Result<()> {
    if crate::init::rootless::active() {
        return crate::init::rootless::bind_devices(rootfs, devices);
    }
    // With no umask, mknod gives each node its mode exactly: no chmod afterwards.
    let umask = nix::sys::stat::umask(Mode::empty());
    let made = make_nodes(rootfs, devices);
    nix::sys::stat::umask(umask);
    made
}

fn make_nodes(rootfs: &Path, devices: &[LinuxDevice]) -> Result<()> {
    let (me_uid, me_gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
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
            crate::init::rootless::locked_flags(&target)
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
