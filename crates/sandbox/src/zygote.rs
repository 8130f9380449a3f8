//! The sandbox zygote: one re-executed init per init program, started on the first RUN, that
//! forks the init of every later run.
//!
//! Re-executing rbuild for each RUN cost about 1.8 ms (spawn, loading and relocating a large
//! binary, starting its runtime); a fork of the small, single-threaded zygote costs a tenth
//! of that. The forked child is exactly what a fresh init would be: it gets the request's
//! status socket as stdin and its output pipes as stdout and stderr, every other descriptor
//! closed, an empty signal mask, and then runs the init (`init::init_process`).
//!
//! Protocol: rbuild holds one end of a `SOCK_SEQPACKET` pair (the zygote's stdin) and sends
//! one message per run whose `SCM_RIGHTS` are the status socket, the stdout pipe and the
//! stderr pipe. The child's first status line is [`Status::Started`] with its pid, which
//! rbuild turns into a pidfd (the child then waits for its config, so it is alive) to signal
//! it without any pid-reuse race. The zygote keeps each child's status socket until it has
//! reaped the child, then writes [`Status::InitEnded`] on it: a run whose init died without
//! reporting learns how it ended.
//!
//! Lifetime: the zygote exits when rbuild's end of the pair closes (rbuild exited or was
//! killed); its children have it as their parent-death signal's parent, so they die with it,
//! and their pid 1s with them. A zygote that died is started again on the next run.

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::error::{Result, SetupError};
use crate::protocol::Status;

/// `argv[2]` (after [`crate::INIT_ARG`]) that makes the init serve as the zygote.
pub(crate) const ZYGOTE_ARG: &str = "zygote";

/// The descriptors of one run, handed to the zygote.
pub(crate) struct RunFds {
    /// The child's end of the status socket (its stdin).
    pub status: UnixStream,
    /// The write end of the stdout pipe.
    pub stdout: OwnedFd,
    /// The write end of the stderr pipe.
    pub stderr: OwnedFd,
}

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

/// Has the zygote of `init_exe` (started now if needed) fork an init for one run.
pub(crate) fn launch(init_exe: &Path, fds: RunFds) -> Result<()> {
    let mut all = zygotes().lock().unwrap_or_else(|e| e.into_inner());
    // A zygote that died (killed, out of memory) refuses the message: start a new one, once.
    for attempt in 0..2 {
        if !all.contains_key(init_exe) {
            all.insert(init_exe.to_path_buf(), start(init_exe)?);
        }
        let Some(zygote) = all.get(init_exe) else {
            continue;
        };
        match send_request(&zygote.control, &fds) {
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
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SetupError::sys("create the sandbox zygote's socket pair", e))?;
    let process = Command::new(init_exe)
        .arg(crate::INIT_ARG)
        .arg(ZYGOTE_ARG)
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .spawn()
        .map_err(|source| SetupError::Spawn {
            exe: init_exe.to_path_buf(),
            source,
        })?;
    crate::trace::mark("rbuild: zygote spawned");
    Ok(Zygote {
        control: ours,
        process,
    })
}

fn send_request(control: &OwnedFd, fds: &RunFds) -> std::result::Result<(), Errno> {
    let raw = [
        fds.status.as_raw_fd(),
        fds.stdout.as_raw_fd(),
        fds.stderr.as_raw_fd(),
    ];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(
        control.as_raw_fd(),
        &[IoSlice::new(b"r")],
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map(|_| ())
}

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
    loop {
        let mut polled = [
            PollFd::new(control.as_fd(), PollFlags::POLLIN),
            PollFd::new(exits.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut polled, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => std::process::exit(125),
        }
        let request = polled[0].any().unwrap_or(true);
        if polled[1].any().unwrap_or(false) {
            while exits.read_signal().ok().flatten().is_some() {}
            reap(&mut running);
        }
        if request {
            match receive(&control) {
                Ok(Some(fds)) => fork_init(fds, &mut running),
                Ok(None) => std::process::exit(0),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => std::process::exit(125),
            }
        }
    }
}

/// Reaps every exited child and tells its run how it ended.
fn reap(running: &mut HashMap<Pid, UnixStream>) {
    loop {
        let (pid, how) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, format!("exit status: {code}")),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, format!("signal: {sig}")),
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        };
        if let Some(mut status) = running.remove(&pid) {
            if let Ok(mut line) = serde_json::to_string(&Status::InitEnded(how)) {
                line.push('\n');
                // The run may be over and its end of the socket gone: nobody to tell then.
                let _ = status.write_all(line.as_bytes());
            }
        }
    }
}

/// Receives one run's descriptors; `None` when rbuild has closed its end.
fn receive(control: &OwnedFd) -> std::result::Result<Option<RunFds>, Errno> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 3]);
    let msg = recvmsg::<()>(
        control.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )?;
    let mut received = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: descriptors passed to us are ours to own.
            received.extend(
                fds.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if msg.bytes == 0 && received.is_empty() {
        return Ok(None);
    }
    let mut fds = received.into_iter();
    match (fds.next(), fds.next(), fds.next()) {
        (Some(status), Some(stdout), Some(stderr)) => Ok(Some(RunFds {
            status: UnixStream::from(status),
            stdout,
            stderr,
        })),
        // A malformed request: dropping what came closes it, and its run sees the end.
        _ => Err(Errno::EAGAIN),
    }
}

/// Forks the init of one run; the parent keeps only the status socket.
fn fork_init(fds: RunFds, running: &mut HashMap<Pid, UnixStream>) {
    // SAFETY: the zygote is single-threaded (an init that started no thread).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => become_init(fds),
        Ok(ForkResult::Parent { child }) => {
            running.insert(child, fds.status);
        }
        Err(e) => {
            let mut status = fds.status;
            let failed = Status::SetupFailed(format!("fork the sandbox init: {e}"));
            if let Ok(mut line) = serde_json::to_string(&failed) {
                line.push('\n');
                let _ = status.write_all(line.as_bytes());
            }
        }
    }
}

/// In the forked child: the state of a freshly started init, then the init itself.
fn become_init(fds: RunFds) -> ! {
    let zygote = nix::unistd::getppid();
    if crate::init::set_pdeathsig().is_err() || nix::unistd::getppid() != zygote {
        // The zygote died before the death signal was armed: nobody waits for this run.
        std::process::exit(125);
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
    // Everything else: the control socket, the signalfd, other runs' status sockets.
    // SAFETY: close_range with plain integer arguments.
    if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } != 0 {
        std::process::exit(125);
    }
    if nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).is_err()
    {
        std::process::exit(125);
    }
    let started = Status::Started(std::process::id());
    if let Ok(mut line) = serde_json::to_string(&started) {
        line.push('\n');
        // SAFETY: fd 0 is the status socket; ManuallyDrop leaves it open for the init.
        let mut status = std::mem::ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(0) });
        let _ = status.write_all(line.as_bytes());
    }
    crate::init::init_process()
}

/// A pidfd for `pid`, to signal it without a pid-reuse race.
pub(crate) fn pidfd(pid: u32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open with integer arguments; a non-negative result is a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
    if fd < 0 {
        return Err(SetupError::sys(
            "open a pidfd for the sandbox init",
            Errno::last(),
        ));
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `signal` to the process behind `pidfd` (nothing if it is gone).
pub(crate) fn signal(pidfd: &OwnedFd, signal: Signal) {
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no siginfo, no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        );
    }
}
