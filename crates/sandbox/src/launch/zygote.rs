//! The sandbox zygote, rbuild's side: one re-executed init per init program, started on the
//! first RUN, that forks the init of every later run (the zygote's own side is
//! `init::zygote`).
//!
//! Re-executing rbuild for each RUN cost about 1.8 ms (spawn, loading and relocating a large
//! binary, starting its runtime), and unsharing a network namespace another 0.5 ms; a clone
//! of the small, single-threaded zygote into namespaces it made ahead costs a fraction of
//! that.
//!
//! The messages are [`zygote_protocol`](crate::shared::zygote_protocol)'s.
//!
//! Lifetime: the zygote exits when rbuild's end of the pair closes (rbuild exited or was
//! killed); its children have it as their parent-death signal's parent, so they die with it.
//! A zygote that died is started again on the next run.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;

use rbuild_ports::{CancelGuard, CancelToken};

use crate::shared::error::{Result, SetupError};
use crate::shared::trace;
use crate::shared::zygote_protocol::{
    send_kill, send_run, seqpacket_pair, RunFds, INIT_ARG, ZYGOTE_ARG,
};

/// A running zygote, as rbuild sees it.
struct Zygote {
    control: OwnedFd,
    process: Child,
}

/// One zygote per init program (tests and benchmarks use a dedicated init binary).
fn zygotes() -> &'static Mutex<HashMap<PathBuf, Zygote>> {
    static ZYGOTES: OnceLock<Mutex<HashMap<PathBuf, Zygote>>> = OnceLock::new();
    ZYGOTES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Has the zygote of `init_exe` (started now if needed) fork an init for one run, in new
/// namespaces `namespaces` (the spec's; empty for the runtime adapter's init, which unshares
/// nothing), with a user-mode network by slirp4netns `network` (the zygote keeps one ready
/// ahead; see `init::spare_net`).
pub(crate) fn launch(
    init_exe: &Path,
    namespaces: CloneFlags,
    network: Option<&Path>,
    fds: RunFds,
) -> Result<()> {
    let mut all = zygotes().lock().unwrap_or_else(|e| e.into_inner());
    // A zygote that died (killed, out of memory) refuses the message: start a new one, once.
    for attempt in 0..2 {
        if !all.contains_key(init_exe) {
            all.insert(init_exe.to_path_buf(), start(init_exe)?);
        }
        let Some(zygote) = all.get(init_exe) else {
            continue;
        };
        match send_run(&zygote.control, namespaces, network, &fds) {
            Ok(()) => return Ok(()),
            Err(e) if attempt == 0 && matches!(e, Errno::EPIPE | Errno::ECONNRESET) => {
                if let Some(mut dead) = all.remove(init_exe) {
                    let _ = dead.process.wait();
                }
            }
            Err(e) => return Err(SetupError::sys("hand a run to the sandbox zygote", e)),
        }
    }
    Err(SetupError::sys(
        "hand a run to the sandbox zygote",
        Errno::EPIPE,
    ))
}

fn start(init_exe: &Path) -> Result<Zygote> {
    let (ours, theirs) = seqpacket_pair()
        .map_err(|e| SetupError::sys("create the sandbox zygote's socket pair", e))?;
    let process = Command::new(init_exe)
        .arg(INIT_ARG)
        .arg(ZYGOTE_ARG)
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .spawn()
        .map_err(|source| SetupError::Spawn {
            exe: init_exe.to_path_buf(),
            source,
        })?;
    trace::mark("rbuild: zygote spawned");
    Ok(Zygote {
        control: ours,
        process,
    })
}

/// Has the zygote of `init_exe` send `signal` to its init `pid`, if that is still its
/// unreaped child (else nothing happens: the init is gone, and the pid may be reused).
pub(crate) fn kill(init_exe: &Path, pid: u32, signal: Signal) {
    let all = zygotes().lock().unwrap_or_else(|e| e.into_inner());
    let Some(zygote) = all.get(init_exe) else {
        return;
    };
    // A dead zygote took its inits with it: nothing left to kill.
    let _ = send_kill(&zygote.control, pid, signal);
}

/// Stops one run's init on cancellation, through its zygote: at once if its pid is known, else
/// as soon as the zygote says it.
pub(crate) struct Stopper {
    init_exe: PathBuf,
    signal: Signal,
    state: Arc<Mutex<StopState>>,
}

#[derive(Default)]
struct StopState {
    pid: Option<u32>,
    cancelled: bool,
}

impl Stopper {
    pub(crate) fn new(init_exe: &Path, signal: Signal) -> Stopper {
        Stopper {
            init_exe: init_exe.to_path_buf(),
            signal,
            state: Arc::default(),
        }
    }

    fn state(state: &Mutex<StopState>) -> MutexGuard<'_, StopState> {
        state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the init when `cancel` fires (while the guard lives).
    pub(crate) fn on_cancel(&self, cancel: &CancelToken) -> CancelGuard {
        let (state, exe, signal) = (Arc::clone(&self.state), self.init_exe.clone(), self.signal);
        cancel.on_cancel(move || {
            let mut s = Stopper::state(&state);
            s.cancelled = true;
            if let Some(pid) = s.pid {
                kill(&exe, pid, signal);
            }
        })
    }

    /// The zygote said the init's pid: stop it now if the run was cancelled already.
    pub(crate) fn started(&self, pid: u32) {
        let mut s = Stopper::state(&self.state);
        s.pid = Some(pid);
        if s.cancelled {
            kill(&self.init_exe, pid, self.signal);
        }
    }
}
