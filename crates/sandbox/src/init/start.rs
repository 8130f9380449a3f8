//! How one run's init starts, and its stage 0.
//!
//! Normally the zygote clones the init as pid 1 of new pid and mount namespaces, already in
//! the spec's other namespaces ([`pid1_process`]): it unshares the rest and is pid 1 itself.
//! Started any other way ([`init_process`]: by hand, or forked plainly for the runtime
//! adapter), stage 0 reads the [`InitConfig`], unshares the namespaces of the spec and forks
//! pid 1 (`init::pid1`), or hands the spec to the OCI runtime (`init::runtime_stage`), or
//! runs the command in a chroot (`init::chroot_stage`, `--isolation=chroot`). Both
//! wait for rbuild's network go-ahead when the config asks for slirp4netns, and point stdin
//! at /dev/null. Every process dies with its parent (`PR_SET_PDEATHSIG`), so nothing
//! outlives rbuild.

use std::fs::File;
use std::io::BufRead;

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::init::chroot_stage::chroot_stage;
use crate::init::pending::Pending;
use crate::init::pid1::pid1;
use crate::init::runtime_stage::runtime_stage;
use crate::init::status::{release_output, StatusWriter};
use crate::shared::error::{Result, SetupError};
use crate::shared::pdeathsig::set_pdeathsig;
use crate::shared::protocol::{InitConfig, Status};
use crate::shared::runtime_spec::{namespace_flags, need};
use crate::shared::trace;

/// The init of one run (started by hand, or forked by the zygote). Never returns.
pub(crate) fn init_process() -> ! {
    let mut status = StatusWriter::open();
    match stage0(&mut status) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            status.send(&Status::SetupFailed(err.to_string()));
            std::process::exit(125)
        }
    }
}

/// Reads the config line from stdin (stdin stays open for the network go-ahead).
fn read_config() -> Result<InitConfig> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| SetupError::io("read sandbox config from", "stdin", e))?;
    trace::mark("init: config received");
    serde_json::from_str(&line).map_err(|source| SetupError::Protocol {
        what: "decode sandbox config",
        source,
    })
}

/// The init forks and then allocates and reads files: only safe in a single-threaded process,
/// so `init_main` must run before the program starts any thread (e.g. an async runtime).
fn single_threaded() -> Result<()> {
    let tasks = std::fs::read_dir("/proc/self/task")
        .map_err(|e| SetupError::io("list threads in", "/proc/self/task", e))?
        .count();
    if tasks > 1 {
        return Err(SetupError::Threaded { threads: tasks });
    }
    Ok(())
}

fn stage0(status: &mut StatusWriter) -> Result<i32> {
    trace::mark("init: start");
    set_pdeathsig()?;
    single_threaded()?;
    trace::mark("init: checked");
    let cfg = read_config()?;
    trace::mark("init: config read");
    if let Some(runtime) = &cfg.runtime {
        return runtime_stage(&cfg, runtime, status);
    }
    if cfg.chroot {
        enter_namespaces(&cfg, status, CloneFlags::empty(), false)?.settle()?;
        return chroot_stage(&cfg, status);
    }
    let linux = need(cfg.spec.linux().as_ref(), "linux")?;
    let pending = enter_namespaces(&cfg, status, namespace_flags(linux), false)?;
    // SAFETY: this process is single-threaded (a fresh exec that started no threads).
    match unsafe { fork() }.map_err(|e| SetupError::sys("fork sandbox pid 1", e))? {
        ForkResult::Child => {
            let code = match pid1(&cfg, status, pending) {
                Ok(()) => 0,
                Err(err) => {
                    status.send(&Status::SetupFailed(err.to_string()));
                    125
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            // Pid 1 reports everything from here on; see `release_output`.
            status.release();
            release_output();
            wait_exit_code(child)
        }
    }
}

/// Unshares `flags` and lets rbuild attach the user-mode network if the config asks for it
/// and it is not up already (`network_up`: the zygote cloned the init into a networked
/// spare); the go-ahead and stdin are [`Pending`].
fn enter_namespaces(
    cfg: &InitConfig,
    status: &mut StatusWriter,
    flags: CloneFlags,
    network_up: bool,
) -> Result<Pending> {
    if !flags.is_empty() {
        unshare(flags).map_err(|source| SetupError::NamespacesRefused {
            what: "unshare namespaces",
            source,
        })?;
    }
    trace::mark("init: unshared");
    let attach = cfg.slirp && !network_up;
    if attach {
        status.send(&Status::NetnsReady);
    }
    // Opened now, in the host's mount namespace: after pivot_root /dev is the image's.
    let null = File::open("/dev/null").map_err(|e| SetupError::io("open", "/dev/null", e))?;
    Ok(Pending {
        network: attach,
        null,
    })
}

/// The init of one run forked by the zygote as pid 1 of a new pid namespace, already in a new
/// mount namespace and in the namespaces of `entered` (`network_up`: a networked spare's, whose
/// user-mode network is up): it unshares the rest the spec asks for and is the sandbox's pid 1
/// itself (no stage 0). Never returns.
pub(crate) fn pid1_process(entered: CloneFlags, network_up: bool) -> ! {
    let mut status = StatusWriter::open();
    let result = read_config().and_then(|cfg| {
        trace::mark("init: config read");
        let linux = need(cfg.spec.linux().as_ref(), "linux")?;
        let rest = namespace_flags(linux) - entered - CloneFlags::CLONE_NEWPID;
        let pending = enter_namespaces(&cfg, &mut status, rest, network_up)?;
        pid1(&cfg, &mut status, pending)
    });
    match result {
        Ok(()) => std::process::exit(0),
        Err(err) => {
            status.send(&Status::SetupFailed(err.to_string()));
            std::process::exit(125)
        }
    }
}

/// Waits for `child` and returns its exit code (128 + the signal when killed).
fn wait_exit_code(child: Pid) -> Result<i32> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(SetupError::sys("wait for sandbox pid 1", e)),
        }
    }
}
