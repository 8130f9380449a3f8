//! Pid 1 of the sandbox: mounts the root (`init::root`), the spec's mounts (`init::mounts`),
//! the `RUN --mount`s (`init::run_mounts`), device nodes, masked and read-only paths, reports
//! the placeholders it created, pivots into the rootfs, resolves the user, and forks the
//! command (`init::command`). It reaps every zombie until the command exits, kills and reaps
//! whatever the command left behind, and only then reports how the command ended: after that
//! line nothing in the sandbox runs, so rbuild takes the upper dir as the layer without
//! waiting for the namespaces' teardown (pid 1 lets go of rbuild's pipes first).

use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::init::command::{env_for, exec_command, find_program, Command};
use crate::init::devices;
use crate::init::loopback;
use crate::init::mounts;
use crate::init::pending::Pending;
use crate::init::placeholders::PlaceholderTracker;
use crate::init::root::mount_root;
use crate::init::run_mounts;
use crate::init::status::{release_output, StatusWriter};
use crate::init::user::{self, ExecUser};
use crate::shared::cgroups;
use crate::shared::error::{Result, SetupError};
use crate::shared::pdeathsig::set_pdeathsig;
use crate::shared::protocol::{InitConfig, Status};
use crate::shared::runtime_spec::need;
use crate::shared::trace;

/// Pid 1 of the sandbox: sets up the root, runs the command, reaps, reports.
/// `pending`: the network's go-ahead and stdin, settled just before the command is forked, so
/// that the mounts below overlap rbuild attaching the network.
pub(crate) fn pid1(cfg: &InitConfig, status: &mut StatusWriter, pending: Pending) -> Result<()> {
    trace::mark("pid1: start");
    set_pdeathsig()?;
    let spec = &cfg.spec;
    let linux = need(spec.linux().as_ref(), "linux")?;
    let rootfs = need(spec.root().as_ref(), "root")?.path().clone();
    let process = need(spec.process().as_ref(), "process")?;

    // The run's cgroup first, so that everything it starts is limited and accounted.
    cgroups::enter(spec)?;
    mounts::make_private()?;
    if let Some(hostname) = spec.hostname() {
        nix::unistd::sethostname(hostname).map_err(|e| SetupError::sys("sethostname", e))?;
    }
    if cfg.loopback {
        loopback::loopback_up()?;
    }
    mount_root(cfg, &rootfs)?;
    trace::mark("pid1: root mounted");

    let mut tracker = PlaceholderTracker::new(&rootfs, &cfg.upper_abs);
    for m in spec.mounts().iter().flatten() {
        mounts::mount_one(m, &mut tracker)?;
    }
    trace::mark("pid1: spec mounts");
    let prepared = run_mounts::prepare(&cfg.scratch, &cfg.run_mounts)?;
    run_mounts::mount_all(&prepared, &mut tracker)?;
    trace::mark("pid1: run mounts");
    devices::create_devices(&rootfs, linux.devices().as_deref().unwrap_or(&[]))?;
    devices::dev_symlinks(&rootfs)?;
    trace::mark("pid1: devices");
    mounts::mask_paths(&rootfs, linux.masked_paths().as_deref().unwrap_or(&[]))?;
    trace::mark("pid1: masked");
    mounts::readonly_paths(&rootfs, linux.readonly_paths().as_deref().unwrap_or(&[]))?;
    trace::mark("pid1: readonly");
    for (path, stamp) in tracker.placeholders() {
        status.send(&Status::Placeholder { path, stamp });
    }
    mounts::pivot_into(&rootfs)?;
    trace::mark("pid1: pivoted");

    let user = resolve_user(&cfg.user)?;
    let cwd = PathBuf::from(process.cwd());
    std::fs::create_dir_all(&cwd)
        .map_err(|e| SetupError::io("create working directory", &cwd, e))?;
    let env = env_for(process, &user);
    let argv = cfg.command();
    let program = find_program(&argv, &env)?;
    pending.settle()?;
    trace::mark("pid1: fork command");

    // SAFETY: pid 1 is single-threaded.
    match unsafe { fork() }.map_err(|e| SetupError::sys("fork command", e))? {
        ForkResult::Child => {
            let err = exec_command(&Command {
                process,
                argv: &argv,
                seccomp: linux.seccomp().as_ref(),
                user: &user,
                cwd: &cwd,
                program: &program,
                env: &env,
            });
            status.send(&Status::SetupFailed(err.to_string()));
            std::process::exit(127)
        }
        ForkResult::Parent { child } => {
            trace::mark("pid1: waiting");
            let end = reap_until(child)?;
            trace::mark("pid1: command exited");
            // The final status promises that nothing in the sandbox runs any more (rbuild then
            // takes the upper dir as the layer): kill and reap what the command left behind.
            kill_all_and_reap()?;
            release_output();
            status.send(&end);
            trace::mark("pid1: reported");
            Ok(())
        }
    }
}

fn read_optional(path: &str) -> Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(SetupError::io("read", path, e)),
    }
}

/// `spec` (USER's value) resolved against this root's /etc/passwd and /etc/group.
pub(crate) fn resolve_user(spec: &str) -> Result<ExecUser> {
    let passwd = read_optional("/etc/passwd")?;
    let group = read_optional("/etc/group")?;
    user::resolve(spec, &passwd, &group)
}

/// In pid 1: kills every other process of the pid namespace and reaps them all.
fn kill_all_and_reap() -> Result<()> {
    // kill(-1) from a pid namespace's init reaches every process of the namespace but itself.
    match nix::sys::signal::kill(Pid::from_raw(-1), nix::sys::signal::Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => return Err(SetupError::sys("kill the sandbox's processes", e)),
    }
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(()),
            Err(e) => return Err(SetupError::sys("reap the sandbox's processes", e)),
        }
    }
}

/// Reaps every child (zombies re-parented to pid 1 included) until `command` has exited.
pub(crate) fn reap_until(command: Pid) -> Result<Status> {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => return Ok(Status::Exited(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == command => {
                return Ok(Status::Signaled(sig as i32))
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(SetupError::sys("wait for command", e)),
        }
    }
}
