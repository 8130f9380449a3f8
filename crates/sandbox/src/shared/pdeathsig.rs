//! Dying with the parent: every process of the sandbox side (the zygote's children, the
//! spare-namespace helper, the init's stages, and the parent rbuild forks to enter a user
//! namespace) asks for SIGKILL when its parent dies, so that nothing outlives rbuild.

use nix::sys::signal::Signal;

use crate::shared::error::{Result, SetupError};

/// Asks the kernel to SIGKILL this process when its parent (thread) dies.
pub(crate) fn set_pdeathsig() -> Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| SetupError::sys("set parent death signal", e))
}
