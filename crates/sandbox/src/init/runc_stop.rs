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

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
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
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) } != 0 {
            return Err(SetupError::sys("set parent death signal", Errno::last()));
        }
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
                RETRY.as_millis() as libc::c_int
            } else {
                -1
            };
            let mut fds = vec![libc::pollfd {
                fd: self.fd.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            if let Some(p) = &pidfd {
                fds.push(libc::pollfd {
                    fd: p.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if rc < 0 && Errno::last() != Errno::EINTR {
                return Err(std::io::Error::last_os_error());
            }
            if fds[0].revents & libc::POLLIN != 0 {
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
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}
