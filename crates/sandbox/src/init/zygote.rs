//! The zygote's own side (rbuild's is `launch::zygote`, the messages `shared::zygote_protocol`):
//! a single-threaded loop that forks each run's init, keeps spare namespaces ready
//! (`init::spare_ns`) and reaps.
//!
//! A run that asks for a new pid and mount namespace (every built-in sandbox) is cloned with
//! `CLONE_NEWPID | CLONE_NEWNS`, so the child is the sandbox's pid 1 at once (no stage 0 and
//! no second fork), and joins a spare network, IPC and UTS namespace when one is ready; it
//! unshares the rest itself ([`pid1_process`]). A run that asks for slirp4netns joins a
//! networked spare instead when one is ready (`init::spare_net`: `tap0` configured already),
//! and the next one is made meanwhile. Any other run (the runtime adapter's init) is a plain
//! fork running the init as a re-executed one would ([`init_process`]).
//!
//! Every child starts as a fresh init would: the run's status socket as stdin, its output
//! pipes as stdout and stderr, no other descriptor, an empty signal mask, and the zygote as
//! the parent its death signal watches.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::init::spare_net::NetPool;
use crate::init::spare_ns::{Making, Spare, SPARE_FLAGS};
use crate::init::start::{init_process, pid1_process};
use crate::shared::error::SetupError;
use crate::shared::pdeathsig::set_pdeathsig;
use crate::shared::protocol::Status;
use crate::shared::trace;
use crate::shared::zygote_protocol::{receive, Message, Request, RunFds};

/// The zygote's loop (stdin is the control socket). Never returns.
pub(crate) fn serve() -> ! {
    // SAFETY: fd 0 is the control socket rbuild gave us, owned from here on.
    let control = unsafe { OwnedFd::from_raw_fd(0) };
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    if mask.thread_block().is_err() {
        std::process::exit(125);
    }
    let Ok(exits) = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
    else {
        std::process::exit(125);
    };
    // Each child's status socket, until the child is reaped.
    let mut running: HashMap<Pid, UnixStream> = HashMap::new();
    let mut spare: Option<Spare> = None;
    let mut making = Making::start();
    let mut networked = NetPool::default();
    // A helper that failed (say, no right to make namespaces) is not tried again: the inits
    // unshare their own.
    let mut spares_work = true;
    loop {
        let mut polled = vec![
            PollFd::new(control.as_fd(), PollFlags::POLLIN),
            PollFd::new(exits.as_fd(), PollFlags::POLLIN),
        ];
        let plain_at = making.as_ref().map(|m| {
            polled.push(PollFd::new(m.ready_fd(), PollFlags::POLLIN));
            polled.len() - 1
        });
        let net_from = polled.len();
        polled.extend(
            networked
                .making_fds()
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
        );
        match poll(&mut polled, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => std::process::exit(125),
        }
        trace::mark("zygote: woken");
        let request = polled[0].any().unwrap_or(true);
        let exited = polled[1].any().unwrap_or(false);
        let ready = |at: Option<usize>| {
            at.and_then(|i| polled.get(i))
                .is_some_and(|p| p.any().unwrap_or(true))
        };
        let spare_ready = ready(plain_at);
        let net_readable: Vec<bool> = (net_from..polled.len()).map(|i| ready(Some(i))).collect();
        drop(polled);
        if net_readable.contains(&true) {
            networked.progress(&net_readable);
        }
        if spare_ready {
            spare = making.take().and_then(Making::finish);
            spares_work = spare.is_some();
        }
        if exited {
            while exits.read_signal().ok().flatten().is_some() {}
            reap(&mut running, &mut networked);
        }
        if request {
            match receive(&control) {
                Ok(Some(Message::Kill { pid, signal })) => {
                    if running.contains_key(&pid) {
                        let _ = nix::sys::signal::kill(pid, signal);
                    }
                }
                Ok(Some(Message::Run(req))) => {
                    // A sandbox's init: pid 1 of new pid and mount namespaces at once, in the
                    // spare's other namespaces.
                    // A run with slirp4netns joins a networked spare when one is ready;
                    // no other run ever gets one.
                    let sandbox = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS;
                    let slirp = req
                        .network
                        .clone()
                        .filter(|_| req.namespaces.contains(sandbox | CloneFlags::CLONE_NEWNET));
                    let net_spare = slirp.as_deref().and_then(|exe| networked.take(exe));
                    if let Some(net_spare) = net_spare {
                        let pid =
                            clone_child(req, sandbox, Some((&net_spare.spare, true)), &mut running);
                        networked.in_use(pid, net_spare);
                    } else if req.namespaces.contains(sandbox) {
                        let plain = spare.take();
                        clone_child(
                            req,
                            sandbox,
                            plain.as_ref().map(|s| (s, false)),
                            &mut running,
                        );
                    } else {
                        clone_child(req, CloneFlags::empty(), None, &mut running);
                    }
                    if let Some(exe) = &slirp {
                        networked.replenish(exe);
                    }
                    if spares_work && spare.is_none() && making.is_none() {
                        making = Making::start();
                    }
                }
                Ok(None) => {
                    networked.shutdown();
                    std::process::exit(0)
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => {
                    networked.shutdown();
                    std::process::exit(125)
                }
            }
        }
    }
}

/// Clones (forks, with `flags`) the init of one run into `spare`'s namespaces (`true`: a
/// networked spare, whose network the init must join); the zygote keeps only its status socket
/// and says the init's pid first. The init's pid, if it was cloned.
fn clone_child(
    req: Request,
    flags: CloneFlags,
    spare: Option<(&Spare, bool)>,
    running: &mut HashMap<Pid, UnixStream>,
) -> Option<Pid> {
    // libc: nix's clone needs a stack of its own; this is a fork with namespace flags.
    // SAFETY: a fork-like clone (no CLONE_VM, no new stack) of this single-threaded process.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags.bits() | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    let mut status = req.fds.status;
    if pid == 0 {
        let fds = RunFds {
            status,
            stdout: req.fds.stdout,
            stderr: req.fds.stderr,
        };
        become_init(fds, req.namespaces, flags, spare);
    }
    trace::mark("zygote: cloned");
    let line = if pid < 0 {
        let source = Errno::last();
        let err = if flags.is_empty() {
            SetupError::sys("fork the sandbox init", source)
        } else {
            SetupError::NamespacesRefused {
                what: "fork the sandbox init into new namespaces",
                source,
            }
        };
        Status::SetupFailed(err.to_string())
    } else {
        Status::Started(pid as u32)
    };
    if let Ok(mut text) = serde_json::to_string(&line) {
        text.push('\n');
        let _ = status.write_all(text.as_bytes());
    }
    if pid > 0 {
        running.insert(Pid::from_raw(pid as i32), status);
        return Some(Pid::from_raw(pid as i32));
    }
    None
}

/// In the cloned child: joins the spare namespaces, takes the state of a freshly started
/// init, then runs as pid 1 (cloned into new pid and mount namespaces) or as a plain init.
fn become_init(
    mut fds: RunFds,
    wanted: CloneFlags,
    cloned: CloneFlags,
    spare: Option<(&Spare, bool)>,
) -> ! {
    // Should the zygote die before this, the run goes on (or ends on its own: a dead rbuild
    // never sends the config).
    if set_pdeathsig().is_err() {
        std::process::exit(125);
    }
    let joined = spare.map_or(CloneFlags::empty(), |(s, _)| {
        s.enter(wanted & SPARE_FLAGS & !cloned)
    });
    // A networked spare's network must be joined: unsharing another would run the command
    // without the network rbuild believes it has.
    let network_up = spare.is_some_and(|(_, networked)| networked);
    if network_up && !joined.contains(CloneFlags::CLONE_NEWNET) {
        let failed = Status::SetupFailed(
            SetupError::sys("join the networked spare namespace", Errno::last()).to_string(),
        );
        if let Ok(mut line) = serde_json::to_string(&failed) {
            line.push('\n');
            let _ = fds.status.write_all(line.as_bytes());
        }
        std::process::exit(125);
    }
    if network_up {
        trace::mark("init: joined a networked spare");
    }
    let moves = [
        (fds.status.as_raw_fd(), 0),
        (fds.stdout.as_raw_fd(), 1),
        (fds.stderr.as_raw_fd(), 2),
    ];
    for (from, to) in moves {
        // dup2 clears close-on-exec on the new descriptor; the originals are closed below.
        if nix::unistd::dup2(from, to).is_err() {
            std::process::exit(125);
        }
    }
    std::mem::forget(fds);
    // Everything else: the control socket, the signalfd, spares, other runs' status sockets.
    // libc: nix 0.29 has no close_range.
    // SAFETY: close_range with plain integer arguments.
    if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } != 0 {
        std::process::exit(125);
    }
    trace::descriptors_closed();
    if nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).is_err()
    {
        std::process::exit(125);
    }
    if cloned.contains(CloneFlags::CLONE_NEWPID) {
        pid1_process(cloned | joined, network_up)
    } else {
        init_process()
    }
}

/// Reaps every exited child and tells its run how it ended (spare helpers and slirp4netns have
/// no run; a run's slirp4netns is stopped when its init is reaped).
fn reap(running: &mut HashMap<Pid, UnixStream>, networked: &mut NetPool) {
    loop {
        let (pid, how) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, format!("exit status: {code}")),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, format!("signal: {sig}")),
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        };
        networked.reaped(pid);
        if let Some(mut status) = running.remove(&pid) {
            if let Ok(mut line) = serde_json::to_string(&Status::InitEnded(how)) {
                line.push('\n');
                // The run may be over and its end of the socket gone: nobody to tell then.
                let _ = status.write_all(line.as_bytes());
            }
        }
    }
}
