//! [`NamespaceExecutor`]: the built-in [`Executor`]. It prepares a private scratch dir (layer
//! links, generated /etc files, the rootfs mount point: `launch::scratch`), has the zygote of
//! `init_exe` (`launch::zygote`: `init_exe` re-executed once with `INIT_ARG`) fork an init,
//! hands it the spec over a socket on its stdin, streams the command's stdout/stderr to the
//! request's [`LogSink`](rbuild_ports::LogSink) while it reads the init's status socket up to
//! the command's end (`launch::run_init`, `launch::run_io`), and finally removes the setup's
//! placeholders (if any: the init layer usually provides every mount point) from the upper dir
//! (`launch::snapshotter`). The zygote reaps the init (the namespaces' teardown takes
//! milliseconds) off rbuild's path. Scratch dirs live on /dev/shm when it is a tmpfs.

use std::path::PathBuf;

use rbuild_graph::NetworkMode;
use rbuild_ports::{ExecError, ExecRequest, Executor};
use rbuild_types::Privileges;

use crate::launch::chroot::{self, Isolation};
use crate::launch::run_init::{setup, Launch};
use crate::launch::scratch::Scratch;
use crate::launch::slirp;
use crate::launch::snapshotter::{run_snapshotted, Snapshotter};
use crate::shared::cgroups::RunLimits;
use crate::shared::trace;

/// Runs each RUN in fresh namespaces with an overlay root, by re-executing `init_exe`.
#[derive(Debug, Clone)]
pub struct NamespaceExecutor {
    init_exe: PathBuf,
    /// slirp4netns, when usable: outbound network for `NetworkMode::Default` (else why not).
    slirp: Result<PathBuf, slirp::NoOutbound>,
    snapshotter: Snapshotter,
    /// Namespaces, or a chroot where they are refused (which implies the copy snapshotter).
    isolation: Isolation,
    /// The privileges rbuild runs with (detected once at startup).
    privileges: Privileges,
    /// Resource limits of every run (`--memory`, `--cpu-quota`, `--cgroup-parent`).
    limits: RunLimits,
}

impl NamespaceExecutor {
    /// `init_exe` is the program re-executed as the sandbox's init; it must call
    /// `init_main` when its `argv[1]` is `INIT_ARG`. The rbuild binary passes
    /// `/proc/self/exe`.
    ///
    /// `NetworkMode::Default` gets outbound access through slirp4netns when it is usable
    /// (looked up here), and only loopback otherwise ([`NamespaceExecutor::no_outbound`]).
    ///
    /// The snapshotter is [`Snapshotter::detect`]ed; see [`NamespaceExecutor::with_snapshotter`].
    /// `privileges` are rbuild's ([`detect_privileges`](crate::detect_privileges) at startup,
    /// then `userns::enter`): in a user namespace the copy snapshotter marks opaque
    /// directories `user.overlay.opaque` and slirp4netns needs a usable `/dev/net/tun`.
    pub fn new(init_exe: PathBuf, privileges: Privileges) -> Self {
        NamespaceExecutor {
            init_exe,
            slirp: slirp::outbound(),
            snapshotter: Snapshotter::detect(),
            isolation: Isolation::Namespaces,
            privileges,
            limits: RunLimits::default(),
        }
    }

    /// Limits every run's resources with a cgroup of its own (see `shared::cgroups`).
    pub fn with_limits(mut self, limits: RunLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Isolates every run with `isolation`; `Chroot` uses the copy snapshotter (overlayfs
    /// needs a mount) and the host's network (see `launch::chroot`).
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Why RUN with `NetworkMode::Default` gets loopback only, if it does (never in a
    /// chroot: the network is the host's).
    pub fn no_outbound(&self) -> Option<&slirp::NoOutbound> {
        match self.isolation {
            Isolation::Namespaces => self.slirp.as_ref().err(),
            Isolation::Chroot => None,
        }
    }

    /// Uses `snapshotter` for every run.
    pub fn with_snapshotter(mut self, snapshotter: Snapshotter) -> Self {
        self.snapshotter = snapshotter;
        self
    }
}

impl Executor for NamespaceExecutor {
    fn run(&self, req: ExecRequest<'_>) -> Result<(), ExecError> {
        super::platforms::check_runnable(&req.op.platform)?;
        let chroot = self.isolation == Isolation::Chroot;
        if chroot {
            chroot::refuse_unsupported(&req).map_err(setup)?;
        }
        let slirp = match req.op.network {
            NetworkMode::Default if !chroot => self.slirp.as_deref().ok(),
            _ => None,
        };
        trace::mark("rbuild: run");
        let scratch = Scratch::prepare(&req, slirp.is_some()).map_err(setup)?;
        trace::mark("rbuild: scratch ready");
        let launch = Launch {
            init_exe: &self.init_exe,
            runtime: None,
            slirp,
            chroot,
            privileges: self.privileges,
            limits: &self.limits,
        };
        let snapshotter = if chroot {
            Snapshotter::Copy
        } else {
            self.snapshotter
        };
        let outcome = run_snapshotted(&launch, &req, &scratch, snapshotter).map_err(setup)?;
        drop(scratch);
        trace::mark("rbuild: scratch removed");
        outcome.into_result()
    }
}
