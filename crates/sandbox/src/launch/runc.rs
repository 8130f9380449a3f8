//! [`RuncExecutor`]: the same runtime spec run by an external OCI runtime (runc, crun).
//!
//! rbuild cannot mount the overlay in its own (multi-threaded, host) mount namespace without
//! leaking it, so the runtime is started through the sandbox init as well: rbuild prepares
//! the scratch dir and has the zygote fork an init exactly as for the built-in executor, but
//! with [`Launch::runtime`] set, which makes the init hand the spec to the runtime instead of
//! running it (`init::runtime_stage`, where the rest of the story is told). The overlay
//! disappears with the init's mount namespace.
//!
//! Exit codes come from the runtime, which reports a command killed by signal N as exit code
//! 128+N (as Docker does); a runtime error (logged at level "error") is a setup error.
//! Cancellation: rbuild has the zygote send the init SIGTERM (not SIGKILL), on which the init
//! deletes the container.

use std::path::PathBuf;

use rbuild_ports::{ExecError, ExecRequest, Executor};
use rbuild_types::Privileges;

use crate::launch::run_init::{setup, Launch};
use crate::launch::scratch::Scratch;
use crate::launch::snapshotter::{run_snapshotted, Snapshotter};
use crate::shared::cgroups::RunLimits;

/// Runs each RUN with an OCI runtime such as `/usr/sbin/runc`.
#[derive(Debug, Clone)]
pub struct RuncExecutor {
    /// The runtime binary (`runc`, `crun`: anything with runc's CLI).
    pub runtime: PathBuf,
    /// The program re-executed to prepare the root (see
    /// [`NamespaceExecutor::new`](crate::launch::executor::NamespaceExecutor::new)).
    pub init_exe: PathBuf,
    /// How the root is made (detected by [`RuncExecutor::new`]).
    pub snapshotter: Snapshotter,
    /// The privileges rbuild runs with (detected once at startup).
    pub privileges: Privileges,
    /// Resource limits of every run (the runtime applies them from the spec).
    pub limits: RunLimits,
}

impl RuncExecutor {
    pub fn new(runtime: PathBuf, init_exe: PathBuf, privileges: Privileges) -> Self {
        RuncExecutor {
            runtime,
            init_exe,
            snapshotter: Snapshotter::detect(),
            privileges,
            limits: RunLimits::default(),
        }
    }
}

impl Executor for RuncExecutor {
    fn run(&self, req: ExecRequest<'_>) -> Result<(), ExecError> {
        super::platforms::check_runnable(&req.op.platform)?;
        let scratch = Scratch::prepare(&req, false).map_err(setup)?;
        let launch = Launch {
            init_exe: &self.init_exe,
            runtime: Some(&self.runtime),
            slirp: None,
            chroot: false,
            privileges: self.privileges,
            limits: &self.limits,
        };
        let outcome = run_snapshotted(&launch, &req, &scratch, self.snapshotter).map_err(setup)?;
        outcome.into_result()
    }
}
