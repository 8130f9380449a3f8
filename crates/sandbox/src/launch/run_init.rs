//! Starting one run's init and collecting what it reports: [`Launch`] says how (the init
//! program, an OCI runtime to hand the spec to, slirp4netns to attach), [`run_init`] builds the
//! spec and the [`InitConfig`], has the zygote fork the init (`launch::zygote`), sends the
//! config, stops the init through the zygote when the build is cancelled, and reads statuses
//! and output (`launch::run_io`) into an [`Outcome`].

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use rbuild_graph::NetworkMode;
use rbuild_ports::{ExecError, ExecRequest};
use rbuild_types::Privileges;

use crate::launch::scratch::Scratch;
use crate::launch::slirp::Slirp;
use crate::launch::spec::{build_spec, raw_argv};
use crate::launch::{mount_plan, run_io, zygote};
use crate::shared::cgroups::{self, RunLimits};
use crate::shared::error::{Result, SetupError};
use crate::shared::protocol::{InitConfig, Stamp, Status, NETWORK_GO};
use crate::shared::runtime_spec::namespace_flags;
use crate::shared::trace;
use crate::shared::zygote_protocol::RunFds;

pub(crate) fn setup(e: SetupError) -> ExecError {
    ExecError::Setup(Box::new(e))
}

/// How to start the init of one run.
pub(crate) struct Launch<'a> {
    /// The program re-executed as the init.
    pub init_exe: &'a Path,
    /// Hand the spec to this OCI runtime instead of running it in the init.
    pub runtime: Option<&'a Path>,
    /// Attach this slirp4netns to the sandbox's network namespace.
    pub slirp: Option<&'a Path>,
    /// Run in a chroot of the copied root, without namespaces (`--isolation=chroot`).
    pub chroot: bool,
    /// The privileges rbuild runs with.
    pub privileges: Privileges,
    /// Resource limits: a cgroup of the run's own (see `shared::cgroups`).
    pub limits: &'a RunLimits,
}

/// What the init reported.
pub(crate) struct Outcome {
    pub placeholders: Vec<(PathBuf, Stamp)>,
    end: Option<Status>,
    setup_error: Option<String>,
    /// How the init process ended, as the zygote reported it; `None` when the command's end
    /// was reported first (it is then irrelevant).
    init_status: Option<String>,
    /// The run's memory limit, when the kernel killed something for going over it.
    oom_limit: Option<u64>,
}

impl Outcome {
    /// Whether the command ran and exited with 0.
    pub fn succeeded(&self) -> bool {
        self.setup_error.is_none() && self.end == Some(Status::Exited(0))
    }

    pub fn into_result(self) -> Result<(), ExecError> {
        if let Some(msg) = self.setup_error {
            return Err(setup(SetupError::Remote(msg)));
        }
        match self.end {
            Some(Status::Exited(0)) => Ok(()),
            Some(Status::Exited(code)) => Err(ExecError::Exit(code)),
            Some(Status::Signaled(9)) if self.oom_limit.is_some() => Err(ExecError::OutOfMemory {
                limit: self.oom_limit.unwrap_or_default(),
            }),
            Some(Status::Signaled(sig)) => Err(ExecError::Signal(sig)),
            _ => Err(setup(SetupError::InitDied {
                status: self.init_status.unwrap_or_else(|| "unknown".to_string()),
            })),
        }
    }
}

/// Starts the init on a prepared scratch dir and collects what it reports.
/// With `root_copy`, that directory is bind-mounted as the root instead of the overlay.
pub(crate) fn run_init(
    launch: &Launch<'_>,
    req: &ExecRequest<'_>,
    scratch: &Scratch,
    root_copy: Option<&Path>,
) -> Result<Outcome> {
    let init_exe = launch.init_exe;
    let argv = raw_argv(req.op);
    if let (Some(runtime), Some(_)) = (launch.runtime, &argv) {
        return Err(SetupError::NonUtf8ForRuntime {
            runtime: runtime.to_path_buf(),
        });
    }
    let mut spec = build_spec(req.op, &scratch.rootfs, &scratch.etc)?;
    launch.limits.apply(&mut spec, &run_id(scratch))?;
    // The built-in init's cgroup is rbuild's to remove; a runtime removes its own.
    let cgroup = (launch.limits.any() && launch.runtime.is_none()).then(|| spec.clone());
    // With the copy-and-diff snapshotter, `Layers` mounts are copies, kept until the run ends.
    let (run_mounts, _copies) = mount_plan::for_init(req.mounts, root_copy.map(|_| req.work))?;
    let cfg = InitConfig {
        spec,
        scratch: scratch.dir.path().to_path_buf(),
        lowers: scratch.lowers.clone(),
        upper: "u".into(),
        work: "w".into(),
        upper_abs: root_copy.map_or_else(|| scratch.upper_abs.clone(), Path::to_path_buf),
        rootfs_bind: root_copy.map(Path::to_path_buf),
        chroot: launch.chroot,
        user: req.op.user.clone(),
        loopback: req.op.network != NetworkMode::Host && !launch.chroot,
        slirp: launch.slirp.is_some(),
        runtime: launch.runtime.map(Path::to_path_buf),
        run_mounts,
        argv,
    };
    let mut config = serde_json::to_vec(&cfg).map_err(|source| SetupError::Protocol {
        what: "encode sandbox config",
        source,
    })?;

    // One socket carries the config and the go-ahead to the init (its stdin) and the status
    // lines back. The zygote forks the init (see `zygote`): no spawn of rbuild per run.
    let (channel, theirs) =
        UnixStream::pair().map_err(|e| SetupError::io("create", "sandbox socket pair", e))?;
    let (stdout, stdout_w) =
        std::io::pipe().map_err(|e| SetupError::io("create", "sandbox stdout pipe", e))?;
    let (stderr, stderr_w) =
        std::io::pipe().map_err(|e| SetupError::io("create", "sandbox stderr pipe", e))?;
    // The runtime adapter's init unshares nothing: the runtime makes the namespaces.
    // A chroot run's init makes none either.
    let namespaces = match (launch.runtime, cfg.spec.linux()) {
        (None, Some(linux)) if !launch.chroot => namespace_flags(linux),
        _ => nix::sched::CloneFlags::empty(),
    };
    zygote::launch(
        init_exe,
        namespaces,
        launch.slirp,
        RunFds {
            status: theirs,
            stdout: stdout_w.into(),
            stderr: stderr_w.into(),
        },
    )?;
    trace::mark("rbuild: launched");
    // Our copies of the init's ends are closed now: the EOFs below come from the sandbox.
    let mut reader = run_io::StatusReader::new(&channel);
    // When another step fails, kill the init: its pid 1, and with it the command, die by
    // PDEATHSIG. An OCI runtime's container would survive that, so the runtime adapter's init
    // gets SIGTERM instead, on which it deletes the container (see `init::runc_stop`). The zygote
    // does the killing, and only while the init is its unreaped child: no pid-reuse race.
    // A chroot run's init is no pid 1 whose death takes the command along: it kills the
    // command's process group on SIGTERM (`init::chroot_stage`).
    let stop_signal = if launch.runtime.is_some() || launch.chroot {
        nix::sys::signal::Signal::SIGTERM
    } else {
        nix::sys::signal::Signal::SIGKILL
    };
    let stopper = zygote::Stopper::new(init_exe, stop_signal);
    let kill_on_cancel = stopper.on_cancel(req.cancel);
    // The config goes at once. With slirp4netns, the zygote usually clones the init into a
    // network namespace whose network is up already; otherwise the init says `NetnsReady` and
    // rbuild attaches a slirp4netns of its own to the init's namespace (which needs the init's
    // pid: the zygote's `Started`, which may come after `NetnsReady`, as both are written
    // by different processes).
    let mut init_pid = None;
    let mut netns_ready = false;
    config.push(b'\n');
    let mut to_init = Some(&channel);
    if let Some(mut sock) = to_init {
        // A failed write means the init died early; its status (or lack of one) says why.
        let _ = sock.write_all(&config);
    }
    trace::mark("rbuild: config sent");
    if launch.slirp.is_none() {
        to_init = None;
    }
    let mut network: Option<Slirp> = None;
    let mut on_status = |st: &Status| -> Result<()> {
        match st {
            Status::Started(pid) => {
                stopper.started(*pid);
                init_pid = Some(*pid);
            }
            Status::NetnsReady => netns_ready = true,
            _ => {}
        }
        if !netns_ready || to_init.is_none() {
            return Ok(());
        }
        if let (Some(exe), Some(pid)) = (launch.slirp, init_pid) {
            let started = Slirp::start(exe, pid);
            if let Some(mut sock) = to_init.take() {
                if started.is_ok() {
                    let _ = sock.write_all(format!("{NETWORK_GO}\n").as_bytes());
                } else {
                    // The end of input without the go-ahead makes the init fail its setup.
                    let _ = sock.shutdown(std::net::Shutdown::Write);
                }
            }
            network = Some(started?);
        }
        Ok(())
    };
    let statuses = run_io::collect(&mut reader, stdout, stderr, req.log, &mut on_status);
    drop(network);
    let oom_limit = cgroup
        .as_ref()
        .filter(|spec| cgroups::oom_killed(spec))
        .and_then(cgroups::memory_limit);
    if let Some(spec) = &cgroup {
        cgroups::remove(spec);
    }
    let statuses = statuses?;
    trace::mark("rbuild: status read");
    drop(kill_on_cancel);
    let mut outcome = Outcome {
        placeholders: Vec::new(),
        end: None,
        setup_error: None,
        init_status: None,
        oom_limit,
    };
    for st in statuses {
        match st {
            Status::Placeholder { path, stamp } => outcome.placeholders.push((path, stamp)),
            Status::SetupFailed(msg) => {
                outcome.setup_error.get_or_insert(msg);
            }
            Status::InitEnded(how) => outcome.init_status = Some(how),
            Status::Started(_) | Status::NetnsReady => {}
            end => outcome.end = Some(end),
        }
    }
    Ok(outcome)
}

/// A name for the run's cgroup: unique on the machine (the scratch dir's name is).
fn run_id(scratch: &Scratch) -> String {
    let name = scratch
        .dir
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    format!(
        "rbuild-{}",
        name.unwrap_or_else(|| std::process::id().to_string())
    )
}
