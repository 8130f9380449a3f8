//! [`RuncExecutor`]: the same runtime spec run by an external OCI runtime (runc, crun).
//!
//! rbuild cannot mount the overlay in its own (multi-threaded, host) mount namespace without
//! leaking it, so the runtime is started through the sandbox init as well: the init unshares
//! only a mount namespace, mounts the overlay root there, creates (and reports) the mount
//! points, resolves the user against the rootfs, writes `config.json` into the scratch dir (the
//! bundle) and runs `<runtime> run`. The runtime sets up namespaces, mounts, capabilities and
//! loopback itself. The overlay disappears with the mount namespace.
//!
//! Exit codes come from the runtime, which reports a command killed by signal N as exit code
//! 128+N (as Docker does); a runtime error (logged at level "error") is a setup error.
//! Cancellation: rbuild sends the init SIGTERM (and the init asks for SIGTERM as its
//! parent-death signal), on which the init force-deletes the container (`<runtime> delete
//! --force`, which kills it) until `<runtime> run` has returned: nothing outlives the build, even
//! when rbuild is killed (module `runc_stop`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sched::{unshare, CloneFlags};
use oci_spec::runtime::{Spec, UserBuilder};
use rbuild_ports::{ExecError, ExecRequest, Executor};

use crate::init::mounts::{self, PlaceholderTracker};
use crate::init::start::{env_for, mount_root, StatusWriter};
use crate::init::user;
use crate::launch::executor::{run_snapshotted, setup, Launch, Scratch, Snapshotter};
use crate::launch::spec::need;
use crate::shared::error::{Result, SetupError};
use crate::shared::paths::secure_join;
use crate::shared::protocol::{InitConfig, Status};

/// Runs each RUN with an OCI runtime such as `/usr/sbin/runc`.
#[derive(Debug, Clone)]
pub struct RuncExecutor {
    /// The runtime binary (`runc`, `crun`: anything with runc's CLI).
    pub runtime: PathBuf,
    /// The program re-executed to prepare the root (see [`crate::NamespaceExecutor::new`]).
    pub init_exe: PathBuf,
    /// How the root is made (detected by [`RuncExecutor::new`]).
    pub snapshotter: Snapshotter,
}

impl RuncExecutor {
    pub fn new(runtime: PathBuf, init_exe: PathBuf) -> Self {
        RuncExecutor {
            runtime,
            init_exe,
            snapshotter: Snapshotter::detect(),
        }
    }
}

impl Executor for RuncExecutor {
    fn run(&self, req: ExecRequest<'_>) -> Result<(), ExecError> {
        let scratch = Scratch::prepare(&req, false).map_err(setup)?;
        let launch = Launch {
            init_exe: &self.init_exe,
            runtime: Some(&self.runtime),
            slirp: None,
        };
        let outcome = run_snapshotted(&launch, &req, &scratch, self.snapshotter).map_err(setup)?;
        outcome.into_result()
    }
}

fn read_in_root(rootfs: &Path, path: &str) -> Result<String> {
    let host = secure_join(rootfs, Path::new(path))?;
    match std::fs::read(&host) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(SetupError::io("read", host, e)),
    }
}

/// The init side of the runtime adapter (see the module docs). Returns the init's exit code.
pub(crate) fn runtime_stage(
    cfg: &InitConfig,
    runtime: &Path,
    status: &mut StatusWriter,
) -> Result<i32> {
    if cfg.argv.is_some() {
        // rbuild refuses this before starting the init; config.json could not carry it.
        return Err(SetupError::NonUtf8ForRuntime {
            runtime: runtime.to_path_buf(),
        });
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| SetupError::sys("unshare mount namespace", e))?;
    mounts::make_private()?;
    let rootfs = need(cfg.spec.root().as_ref(), "root")?.path().clone();
    mount_root(cfg, &rootfs)?;

    // Create the mount points ourselves so they are known placeholders; skip those inside
    // another mount (e.g. /dev/pts inside the /dev tmpfs).
    let mut mounts = cfg.spec.mounts().clone().unwrap_or_default();
    let run_mounts = crate::init::run_mounts::prepare(&cfg.scratch, &cfg.run_mounts)?;
    mounts.extend(crate::init::run_mounts::oci_mounts(&run_mounts)?);
    let mut tracker = PlaceholderTracker::new(&rootfs, &cfg.upper_abs);
    crate::init::run_mounts::precreate(&run_mounts, &mut tracker)?;
    for m in &mounts {
        let dest = m.destination();
        let nested = mounts
            .iter()
            .any(|o| o.destination() != dest && dest.starts_with(o.destination()));
        if nested {
            continue;
        }
        let bind = m.typ().as_deref() == Some("bind");
        let file = bind && m.source().as_ref().is_some_and(|s| !s.is_dir());
        tracker.ensure(dest, file)?;
    }
    for (path, stamp) in tracker.placeholders() {
        status.send(&Status::Placeholder { path, stamp });
    }

    let passwd = read_in_root(&rootfs, "/etc/passwd")?;
    let group = read_in_root(&rootfs, "/etc/group")?;
    let user = user::resolve(&cfg.user, &passwd, &group)?;
    let mut spec = spec_for_user(&cfg.spec, &user)?;
    spec.set_mounts(Some(mounts));
    let config = cfg.scratch.join("config.json");
    let json = serde_json::to_vec_pretty(&spec).map_err(|source| SetupError::Protocol {
        what: "encode config.json",
        source,
    })?;
    std::fs::write(&config, json).map_err(|e| SetupError::io("write", &config, e))?;

    let id = format!(
        "rbuild-{}-{}",
        std::process::id(),
        unique_suffix(&cfg.scratch)
    );
    let state = cfg.scratch.join("runtime-state");
    let log = cfg.scratch.join("runtime.log");
    let base_args = |cmd: &mut Command| {
        cmd.arg("--root")
            .arg(&state)
            .arg("--log")
            .arg(&log)
            .arg("--log-format")
            .arg("json");
    };
    // From here on SIGTERM (rbuild cancelling, or dying) means "kill the
    // container", which the runtime would not do by itself.
    let stop = crate::init::runc_stop::StopSignal::install()?;
    let mut cmd = Command::new(runtime);
    base_args(&mut cmd);
    cmd.arg("run")
        .arg("--bundle")
        .arg(&cfg.scratch)
        .arg(&id)
        .stdin(Stdio::null());
    let result = cmd
        .spawn()
        .and_then(|child| {
            stop.wait(child, || {
                let mut kill = Command::new(runtime);
                base_args(&mut kill);
                kill.arg("delete").arg("--force").arg(&id);
                kill
            })
        })
        .map_err(|e| SetupError::Runtime {
            runtime: runtime.to_path_buf(),
            step: "run",
            detail: e.to_string(),
        });
    // Remove the container whatever happened; a failure here leaves nothing we can fix.
    let mut delete = Command::new(runtime);
    base_args(&mut delete);
    let _ = delete
        .arg("delete")
        .arg("--force")
        .arg(&id)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let exit = result?;

    let end = match exit.code() {
        Some(0) => Status::Exited(0),
        Some(code) => match runtime_error(&log) {
            Some(msg) => Status::SetupFailed(format!("{} run: {msg}", runtime.display())),
            None => Status::Exited(code),
        },
        None => {
            use std::os::unix::process::ExitStatusExt;
            Status::Signaled(exit.signal().unwrap_or(libc::SIGKILL))
        }
    };
    // The runtime has deleted the container: nothing runs any more. Let rbuild go on without
    // waiting for this process's mount namespace to be torn down.
    crate::init::start::release_output();
    status.send(&end);
    status.release();
    Ok(0)
}

/// The spec with the resolved user, HOME, and (for a non-root user) no effective, permitted
/// or inheritable capabilities, as Docker does.
fn spec_for_user(spec: &Spec, user: &user::ExecUser) -> Result<Spec> {
    let mut spec = spec.clone();
    let mut process = need(spec.process().clone(), "process")?;
    process.set_user(
        UserBuilder::default()
            .uid(user.uid)
            .gid(user.gid)
            .additional_gids(user.additional_gids.clone())
            .build()?,
    );
    process.set_env(Some(env_for(&process, user)));
    if user.uid != 0 {
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_effective(None);
            caps.set_permitted(None);
            caps.set_inheritable(None);
            caps.set_ambient(None);
            process.set_capabilities(Some(caps));
        }
    }
    spec.set_process(Some(process));
    Ok(spec)
}

/// The last message the runtime logged at level "error", if any.
fn runtime_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v.get("level").and_then(|l| l.as_str()) == Some("error"))
        .filter_map(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
        .next()
}

/// The random part of the scratch dir's name, to make container ids unique.
fn unique_suffix(scratch: &Path) -> String {
    scratch
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .rsplit('-')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}
