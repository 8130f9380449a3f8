//! Mount propagation: a new mount namespace starts with the host's shared mounts, so both the
//! init (before it builds the sandbox's root) and the launcher's overlay probe make every mount
//! private first, so nothing they mount propagates back to the host.

use nix::mount::{mount, MsFlags};

/// Makes every mount of this process's mount namespace private, recursively.
pub(crate) fn make_rprivate() -> nix::Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
}
