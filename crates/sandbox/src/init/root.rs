//! The root of a run: [`mount_root`] mounts the overlay of its layers ([`mount_overlay`]), or
//! binds the copied root of the copy-and-diff snapshotter. [`overlay_tunables`] are the
//! options every overlay the init mounts takes (the `RUN --mount` layer views too).
//!
//! The overlay is mounted with `volatile` (Linux ≥ 5.10) when the kernel accepts it: overlayfs
//! then skips the fsync it otherwise does after every copy-up and on every `fsync`/`syncfs`
//! through the mount (a `chown -R` over 700 files: 3.35 s without, 0.23 s with). That is safe
//! here because the upper dir only becomes a snapshot through `Snapshots::commit`, which
//! makes the layer durable itself, on the upper dir's own filesystem, before publishing it; a
//! crash before that leaves staging that is never used.
//!
//! Invariant kept: a volatile mount leaves `<workdir>/work/incompat/volatile` behind, and
//! overlayfs refuses any later mount over that work dir ("overlay with incompat feature
//! 'volatile' cannot be mounted", EINVAL). So that leftover is removed before every mount; a
//! work dir is never shared by two live mounts (each run has its own staging), so removing it
//! cannot disturb anything. Kernels without `volatile` get a plain mount.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;

use crate::init::rootless;
use crate::shared::error::{Result, SetupError};
use crate::shared::protocol::InitConfig;

/// Mounts the root at `rootfs`: the overlay, or a bind mount of the copied root.
pub(crate) fn mount_root(cfg: &InitConfig, rootfs: &Path) -> Result<()> {
    let Some(copy) = &cfg.rootfs_bind else {
        return mount_overlay(cfg, rootfs);
    };
    nix::mount::mount(
        Some(copy.as_path()),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| SetupError::Mount {
        what: format!("bind {}", copy.display()),
        target: rootfs.to_path_buf(),
        source,
    })
}

/// The option that tells overlayfs not to sync its upper dir.
const VOLATILE: &str = "volatile";

/// Mounts the overlay of `cfg` (lower, upper and work dirs relative to `cfg.scratch`, which
/// becomes the current directory) at `rootfs`.
fn mount_overlay(cfg: &InitConfig, rootfs: &Path) -> Result<()> {
    std::env::set_current_dir(&cfg.scratch)
        .map_err(|e| SetupError::io("chdir", &cfg.scratch, e))?;
    let work = Path::new(&cfg.work);
    clear_volatile_marker(work)?;
    let data = options(cfg);
    match try_mount(rootfs, &format!("{data},{VOLATILE}")) {
        Ok(()) => Ok(()),
        // Older kernels reject the unknown option before touching the work dir.
        Err(Errno::EINVAL) => {
            clear_volatile_marker(work)?;
            try_mount(rootfs, &data).map_err(|source| SetupError::Mount {
                what: format!("overlay ({data})"),
                target: rootfs.to_path_buf(),
                source,
            })
        }
        Err(source) => Err(SetupError::Mount {
            what: format!("overlay ({data},{VOLATILE})"),
            target: rootfs.to_path_buf(),
            source,
        }),
    }
}

/// `lowerdir=…,upperdir=…,workdir=…` plus the features we turn off where the module knows
/// them (they would put overlay-private metadata into the layer).
fn options(cfg: &InitConfig) -> String {
    let mut data = format!(
        "lowerdir={},upperdir={},workdir={}",
        cfg.lowers.join(":"),
        cfg.upper,
        cfg.work
    );
    data.push_str(&overlay_tunables());
    data
}

/// `,redirect_dir=off,metacopy=off,index=off` for the parameters this kernel's overlayfs
/// knows: layers stay in the plain upper-dir format.
pub(crate) fn overlay_tunables() -> String {
    // `,userxattr` in a user namespace (rootless), where `trusted.*` cannot be written.
    let mut data = rootless::overlay_options().to_string();
    for (param, value) in [
        ("redirect_dir", "off"),
        ("metacopy", "off"),
        ("index", "off"),
    ] {
        if Path::new("/sys/module/overlay/parameters")
            .join(param)
            .exists()
        {
            let value = rootless::overlay_param(param, value);
            data.push_str(&format!(",{param}={value}"));
        }
    }
    data
}

fn try_mount(rootfs: &Path, data: &str) -> std::result::Result<(), Errno> {
    nix::mount::mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(data),
    )
}

/// Removes `<work>/work/incompat` (left by an earlier volatile mount over the same work dir),
/// if present.
pub(crate) fn clear_volatile_marker(work: &Path) -> Result<()> {
    let incompat = work.join("work").join("incompat");
    match std::fs::remove_dir_all(&incompat) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SetupError::io(
            "remove overlay volatile marker",
            &incompat,
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_removal_is_idempotent() {
        let t = tempfile::tempdir().expect("tempdir");
        clear_volatile_marker(t.path()).expect("nothing to remove");
        let marker = t.path().join("work/incompat/volatile");
        std::fs::create_dir_all(&marker).expect("mkdir");
        clear_volatile_marker(t.path()).expect("remove");
        assert!(!t.path().join("work/incompat").exists());
        assert!(t.path().join("work").is_dir());
    }
}
