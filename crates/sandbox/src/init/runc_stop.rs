//! Stopping an OCI runtime's container when the build is cancelled or rbuild dies: the
//! runtime adapter's init turns SIGTERM into `<runtime> delete --force`.
//!
//! `<runtime> run` does not kill its container when it is itself signalled (it forwards
//! catchable signals to the container's pid 1, which ignores those it has no handler for, and
//! SIGKILL cannot be forwarded). So the init blocks SIGTERM, reads it from a signalfd while it
//! waits for `<runtime> run` (through a pidfd, so waiting costs no polling), and on SIGTERM
//! force-deletes the container, retrying every [`RETRY`] until `<runtime> run` has returned
//! (the container may still be being created when the signal arrives). SIGTERM is also the
//! init's parent-death signal from then on, so a killed rbuild stops the container too.
//! Children started with `std::process::Command` begin with an empty signal mask.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::shared::error::{Result, SetupError};

/// How often the container is force-deleted again until the runtime has returned.
const RETRY: Duration = Duration::from_millis(50);

/// SIGTERM, blocked and readable from a signalfd.
pub(crate) struct StopSignal {
    fd: SignalFd,
}

impl StopSignal {
    /// Blocks SIGTERM in this (single-threaded) process, opens a signalfd for it and makes it
    /// the parent-death signal.
    pub(crate) fn install() -> Result<StopSignal> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGTERM);
        mask.thread_block()
            .map_err(|e| SetupError::sys("block SIGTERM", e))?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| SetupError::sys("open signalfd for SIGTERM", e))?;
        set_pdeathsig(Signal::SIGTERM)
            .map_err(|e| SetupError::sys("set parent death signal", e))?;
        Ok(StopSignal { fd })
    }

    /// Waits for `child` (`<runtime> run`). Once SIGTERM has arrived, runs the command made by
    /// `kill` (quietly) right away and then every [`RETRY`] until `child` has exited.
    pub(crate) fn wait(
        &self,
        mut child: Child,
        kill: impl Fn() -> Command,
    ) -> std::io::Result<ExitStatus> {
        // Without pidfds (Linux < 5.3) the child is checked every RETRY.
        let pidfd = pidfd_open(child.id());
        let mut stopping = false;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            let timeout = if stopping || pidfd.is_none() {
                PollTimeout::try_from(RETRY).unwrap_or(PollTimeout::MAX)
            } else {
                PollTimeout::NONE
            };
            let mut fds = vec![PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            if let Some(p) = &pidfd {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Err(e) if e != Errno::EINTR => return Err(e.into()),
                _ => {}
            }
            if fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN))
            {
                // Drain it; a read error only means there was nothing left to read.
                while let Ok(Some(_)) = self.fd.read_signal() {}
                stopping = true;
            }
            if stopping && child.try_wait()?.is_none() {
                let _ = kill()
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// A pidfd for `pid` (readable once the process has exited), if the kernel has them.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // libc: nix 0.29 has no pidfd_open.
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}
