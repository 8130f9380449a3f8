//! [`NamespaceExecutor`]: the built-in [`Executor`]. It prepares a private scratch dir (layer
//! links, generated /etc files, the rootfs mount point), has the zygote of `init_exe` (module
//! `zygote`: `init_exe` re-executed once with [`crate::INIT_ARG`]) fork an init, hands it the
//! spec over a socket on its stdin, streams the command's stdout/stderr to the request's
//! [`LogSink`](rbuild_ports::LogSink) while it reads the init's status socket up to the
//! command's end (module `run_io`), and finally removes the setup's placeholders (if any: the
//! init layer usually provides every mount point) from the upper dir. The zygote reaps the init (the namespaces' teardown takes
//! milliseconds) off rbuild's path. Scratch dirs live on /dev/shm when it is a tmpfs.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use rbuild_graph::NetworkMode;
use rbuild_ports::{ExecError, ExecRequest, Executor};

use crate::launch::remove_placeholders::remove_placeholders;
use crate::launch::slirp::Slirp;
use crate::launch::spec::{build_spec, hosts_file, raw_argv, resolv_conf, EtcFiles, HOSTNAME};
use crate::shared::error::{Result, SetupError};
use crate::shared::protocol::{InitConfig, Stamp, Status, NETWORK_GO};

/// Runs each RUN in fresh namespaces with an overlay root, by re-executing `init_exe`.
#[derive(Debug, Clone)]
pub struct NamespaceExecutor {
    init_exe: PathBuf,
    /// slirp4netns, when installed: outbound network for `NetworkMode::Default`.
    slirp: Option<PathBuf>,
    snapshotter: Snapshotter,
}

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
    /// [`crate::launch::userns::enter`] could mount it in the user namespace), `Copy` otherwise.
    pub fn detect() -> Snapshotter {
        if crate::launch::userns::state().is_some_and(|st| st.overlay.is_err()) {
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

impl NamespaceExecutor {
    /// `init_exe` is the program re-executed as the sandbox's init; it must call
    /// [`crate::init_main`] when its `argv[1]` is [`crate::INIT_ARG`]. The rbuild binary passes
    /// `/proc/self/exe`.
    ///
    /// `NetworkMode::Default` gets outbound access through slirp4netns when it is installed
    /// (looked up here), and only loopback otherwise.
    ///
    /// The snapshotter is [`Snapshotter::detect`]ed; see [`NamespaceExecutor::with_snapshotter`].
    pub fn new(init_exe: PathBuf) -> Self {
        NamespaceExecutor {
            init_exe,
            slirp: crate::launch::slirp::find().filter(|_| crate::init::rootless::tun_usable()),
            snapshotter: Snapshotter::detect(),
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
        let slirp = match req.op.network {
            NetworkMode::Default => self.slirp.as_deref(),
            NetworkMode::None | NetworkMode::Host => None,
        };
        crate::shared::trace::mark("rbuild: run");
        let scratch = Scratch::prepare(&req, slirp.is_some()).map_err(setup)?;
        crate::shared::trace::mark("rbuild: scratch ready");
        let launch = Launch {
            init_exe: &self.init_exe,
            runtime: None,
            slirp,
        };
        let outcome = run_snapshotted(&launch, &req, &scratch, self.snapshotter).map_err(setup)?;
        outcome.into_result()
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
            crate::shared::trace::mark("rbuild: placeholders removed");
            Ok(outcome)
        }
        Snapshotter::Copy => {
            // The init layer first: its mount points are then part of "before", not changes.
            let mut layers = vec![scratch.dir.path().join(INIT_LAYER)];
            layers.extend(req.layers.iter().cloned());
            let dir = req.work.join("copyroot");
            let _remove = RemoveOnDrop(dir.clone());
            let root = crate::launch::copydiff::CopyRoot::prepare(&layers, &dir)?;
            let outcome = run_init(launch, req, scratch, Some(&root.dir))?;
            remove_placeholders(&root.dir, &outcome.placeholders)?;
            if outcome.succeeded() {
                root.diff_into(req.upper)?;
            }
            Ok(outcome)
        }
    }
}

pub(crate) fn setup(e: SetupError) -> ExecError {
    ExecError::Setup(Box::new(e))
}

/// Scratch dirs are named `<prefix><pid of rbuild>-<random>`.
const SCRATCH_PREFIX: &str = "rbuild-sandbox-";

/// Removes scratch dirs left behind by rbuild processes that no longer exist (killed mid-run).
/// Their mounts lived only in the dead sandboxes' namespaces, and the `u`/`w`/`l/*` entries are
/// symlinks, which removal does not follow. Best effort: errors are ignored.
fn sweep_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(SCRATCH_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The scratch dir's bottom overlay layer: the mount points (see [`crate::launch::initlayer`]).
const INIT_LAYER: &str = "init";

/// Where scratch dirs go: `/dev/shm` when it is a writable tmpfs (creating and removing a
/// scratch dir there costs microseconds; on a busy disk filesystem each directory removal may
/// wait milliseconds for the journal), the temp dir otherwise.
fn scratch_parent() -> PathBuf {
    static PARENT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PARENT
        .get_or_init(|| {
            let shm = Path::new("/dev/shm");
            if is_writable_tmpfs(shm) {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            }
        })
        .clone()
}

fn is_writable_tmpfs(dir: &Path) -> bool {
    let Ok(st) = nix::sys::statfs::statfs(dir) else {
        return false;
    };
    st.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC
        && nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The private scratch directory of one run; removed on drop.
pub(crate) struct Scratch {
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub lowers: Vec<String>,
    pub upper_abs: PathBuf,
    pub etc: EtcFiles,
}

impl Scratch {
    /// Creates the scratch dir: `rootfs/`, `l/<n>` links to the layers (top first), the init
    /// layer below them, `u` and `w` links to the upper and work dirs, and the generated /etc
    /// files.
    /// With `slirp`, /etc/resolv.conf points at slirp4netns's DNS forwarder.
    pub fn prepare(req: &ExecRequest<'_>, slirp: bool) -> Result<Scratch> {
        let tmp = scratch_parent();
        sweep_stale(&tmp);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
            .tempdir_in(&tmp)
            .map_err(|e| SetupError::io("create scratch dir in", &tmp, e))?;
        let base = dir.path().to_path_buf();
        let mkdir = |p: &Path| std::fs::create_dir(p).map_err(|e| SetupError::io("mkdir", p, e));
        let rootfs = base.join("rootfs");
        mkdir(&rootfs)?;
        mkdir(&base.join("l"))?;
        let mut lowers = Vec::new();
        for (i, layer) in req.layers.iter().rev().enumerate() {
            let link = base.join("l").join(i.to_string());
            let target = std::fs::canonicalize(layer)
                .map_err(|e| SetupError::io("resolve layer", layer, e))?;
            std::os::unix::fs::symlink(&target, &link)
                .map_err(|e| SetupError::io("symlink", &link, e))?;
            lowers.push(format!("l/{i}"));
        }
        crate::launch::initlayer::create(&base.join(INIT_LAYER))?;
        crate::launch::mount_plan::add_targets(&base.join(INIT_LAYER), req.mounts)?;
        lowers.push(INIT_LAYER.into());
        let upper_abs = std::fs::canonicalize(req.upper)
            .map_err(|e| SetupError::io("resolve upper dir", req.upper, e))?;
        let work_abs = std::fs::canonicalize(req.work)
            .map_err(|e| SetupError::io("resolve work dir", req.work, e))?;
        for (name, target) in [("u", &upper_abs), ("w", &work_abs)] {
            let link = base.join(name);
            std::os::unix::fs::symlink(target, &link)
                .map_err(|e| SetupError::io("symlink", &link, e))?;
        }
        let etc = EtcFiles {
            hosts: base.join("hosts"),
            resolv_conf: base.join("resolv.conf"),
            hostname: base.join("hostname"),
        };
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for (path, content) in [
            (&etc.hosts, hosts_file()),
            (
                &etc.resolv_conf,
                if slirp {
                    format!("nameserver {}\n", crate::launch::slirp::DNS)
                } else {
                    resolv_conf(&host_resolv, req.op.network)
                },
            ),
            (&etc.hostname, format!("{HOSTNAME}\n")),
        ] {
            std::fs::write(path, content).map_err(|e| SetupError::io("write", path, e))?;
        }
        Ok(Scratch {
            dir,
            rootfs,
            lowers,
            upper_abs,
            etc,
        })
    }
}

/// What the init reported.
pub(crate) struct Outcome {
    pub placeholders: Vec<(PathBuf, Stamp)>,
    end: Option<Status>,
    setup_error: Option<String>,
    /// How the init process ended, as the zygote reported it; `None` when the command's end
    /// was reported first (it is then irrelevant).
    init_status: Option<String>,
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
            Some(Status::Signaled(sig)) => Err(ExecError::Signal(sig)),
            _ => Err(setup(SetupError::InitDied {
                status: self.init_status.unwrap_or_else(|| "unknown".to_string()),
            })),
        }
    }
}

/// How to start the init of one run.
pub(crate) struct Launch<'a> {
    /// The program re-executed as the init.
    pub init_exe: &'a Path,
    /// Hand the spec to this OCI runtime instead of running it in the init.
    pub runtime: Option<&'a Path>,
    /// Attach this slirp4netns to the sandbox's network namespace.
    pub slirp: Option<&'a Path>,
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
    let spec = build_spec(req.op, &scratch.rootfs, &scratch.etc)?;
    // With the copy-and-diff snapshotter, `Layers` mounts are copies, kept until the run ends.
    let (run_mounts, _copies) =
        crate::launch::mount_plan::for_init(req.mounts, root_copy.map(|_| req.work))?;
    let cfg = InitConfig {
        spec,
        scratch: scratch.dir.path().to_path_buf(),
        lowers: scratch.lowers.clone(),
        upper: "u".into(),
        work: "w".into(),
        upper_abs: root_copy.map_or_else(|| scratch.upper_abs.clone(), Path::to_path_buf),
        rootfs_bind: root_copy.map(Path::to_path_buf),
        user: req.op.user.clone(),
        loopback: req.op.network != NetworkMode::Host,
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
    let namespaces = match (launch.runtime, cfg.spec.linux()) {
        (None, Some(linux)) => crate::init::start::namespace_flags(linux),
        _ => nix::sched::CloneFlags::empty(),
    };
    crate::launch::zygote::launch(
        init_exe,
        namespaces,
        crate::launch::zygote::RunFds {
            status: theirs,
            stdout: stdout_w.into(),
            stderr: stderr_w.into(),
        },
    )?;
    crate::shared::trace::mark("rbuild: launched");
    // Our copies of the init's ends are closed now: the EOFs below come from the sandbox.
    let mut reader = crate::launch::run_io::StatusReader::new(&channel);
    // When another step fails, kill the init: its pid 1, and with it the command, die by
    // PDEATHSIG. An OCI runtime's container would survive that, so the runtime adapter's init
    // gets SIGTERM instead, on which it deletes the container (see `runc_stop`). The zygote
    // does the killing, and only while the init is its unreaped child: no pid-reuse race.
    let stop_signal = if launch.runtime.is_some() {
        nix::sys::signal::Signal::SIGTERM
    } else {
        nix::sys::signal::Signal::SIGKILL
    };
    let stopper = crate::launch::zygote::Stopper::new(init_exe, stop_signal);
    let kill_on_cancel = stopper.on_cancel(req.cancel);
    // The zygote says the init's pid first. Only slirp4netns needs it before the config is
    // sent (to join the init's network namespace); otherwise the config goes at once.
    let mut init_pid = None;
    if launch.slirp.is_some() {
        match reader.next()? {
            Some(Status::Started(pid)) => {
                stopper.started(pid);
                init_pid = Some(pid);
            }
            Some(Status::SetupFailed(msg)) => return Err(SetupError::Remote(msg)),
            other => {
                return Err(SetupError::InitDied {
                    status: format!("no start report (got {other:?})"),
                })
            }
        }
    }
    config.push(b'\n');
    let mut to_init = Some(&channel);
    if let Some(mut sock) = to_init {
        // A failed write means the init died early; its status (or lack of one) says why.
        let _ = sock.write_all(&config);
    }
    crate::shared::trace::mark("rbuild: config sent");
    if launch.slirp.is_none() {
        to_init = None;
    }
    let mut network: Option<Slirp> = None;
    let mut on_status = |st: &Status| -> Result<()> {
        if let Status::Started(pid) = st {
            stopper.started(*pid);
        }
        if let (Status::NetnsReady, Some(exe), Some(pid)) = (st, launch.slirp, init_pid) {
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
    let statuses =
        crate::launch::run_io::collect(&mut reader, stdout, stderr, req.log, &mut on_status)?;
    drop(network);
    crate::shared::trace::mark("rbuild: status read");
    drop(kill_on_cancel);
    let mut outcome = Outcome {
        placeholders: Vec::new(),
        end: None,
        setup_error: None,
        init_status: None,
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
