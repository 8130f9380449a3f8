//! Dying with the parent: every process of the sandbox side (the zygote's children, the
//! spare-namespace helper, the init's stages, and the parent rbuild forks to enter a user
//! namespace) asks for SIGKILL when its parent dies, so that nothing outlives rbuild.

use nix::errno::Errno;

use crate::shared::error::{Result, SetupError};

/// Asks the kernel to SIGKILL this process when its parent (thread) dies.
pub(crate) fn set_pdeathsig() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
        return Err(SetupError::sys("set parent death signal", Errno::last()));
    }
    Ok(())
}
