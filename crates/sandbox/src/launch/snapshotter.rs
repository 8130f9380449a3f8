//! [`Snapshotter`]: how a RUN's root filesystem is made and its changes captured as the new
//! layer, and [`run_snapshotted`], which runs the init over that root and leaves the layer in
//! the upper dir: with `Overlay` the upper dir of the init's overlay is the layer (minus the
//! setup's placeholders); with `Copy` the layers are copied into a plain root
//! (`launch::copydiff`) that is diffed into the upper dir after a successful run (furnished
//! first for a chroot run, `launch::chroot`).

use std::path::PathBuf;

use rbuild_ports::ExecRequest;

use crate::launch::chroot;
use crate::launch::copydiff::CopyRoot;
use crate::launch::remove_placeholders::remove_placeholders;
use crate::launch::run_init::{run_init, Launch, Outcome};
use crate::launch::scratch::Scratch;
use crate::launch::userns;
use crate::shared::error::Result;
use crate::shared::trace;

/// How a RUN's root filesystem is made and its changes captured as the new layer. Both give
/// the same layer (overlayfs upper-dir format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshotter {
    /// An overlayfs mount of the layers with the upper dir as the new layer (fast).
    Overlay,
    /// A full copy of the layers as the root, diffed into the upper dir after the run (slow:
    /// for kernels or user namespaces where overlayfs cannot be mounted).
    Copy,
}

impl Snapshotter {
    /// `Overlay` when the kernel knows overlayfs (and, rootless, when the probe of
    /// [`userns::enter`] could mount it in the user namespace), `Copy` otherwise.
    pub fn detect() -> Snapshotter {
        if userns::state().is_some_and(|st| st.overlay.is_err()) {
            return Snapshotter::Copy;
        }
        let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        if fs
            .lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
        {
            Snapshotter::Overlay
        } else {
            Snapshotter::Copy
        }
    }

    /// Parses `overlay` or `copy` (as in `RBUILD_SNAPSHOTTER`).
    pub fn parse(name: &str) -> Option<Snapshotter> {
        match name {
            "overlay" | "overlayfs" => Some(Snapshotter::Overlay),
            "copy" => Some(Snapshotter::Copy),
            _ => None,
        }
    }
}

/// Removes the copy-and-diff root when the run is over, whatever happened.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the init over the root `snapshotter` makes, and leaves the layer in the upper dir
/// (without the setup's placeholders).
pub(crate) fn run_snapshotted(
    launch: &Launch<'_>,
    req: &ExecRequest<'_>,
    scratch: &Scratch,
    snapshotter: Snapshotter,
) -> Result<Outcome> {
    match snapshotter {
        Snapshotter::Overlay => {
            let outcome = run_init(launch, req, scratch, None)?;
            remove_placeholders(req.upper, &outcome.placeholders)?;
            trace::mark("rbuild: placeholders removed");
            Ok(outcome)
        }
        Snapshotter::Copy => {
            // The init layer first: its mount points are then part of "before", not changes.
            let mut layers = vec![scratch.init_layer()];
            layers.extend(req.layers.iter().cloned());
            let dir = req.work.join("copyroot");
            let _remove = RemoveOnDrop(dir.clone());
            let root = CopyRoot::prepare_with(&layers, &dir, |root| {
                if launch.chroot {
                    chroot::furnish(root, &scratch.etc)
                } else {
                    Ok(())
                }
            })?;
            let outcome = run_init(launch, req, scratch, Some(&root.dir))?;
            remove_placeholders(&root.dir, &outcome.placeholders)?;
            if outcome.succeeded() {
                root.diff_into(req.upper, &launch.privileges)?;
            }
            Ok(outcome)
        }
    }
}
