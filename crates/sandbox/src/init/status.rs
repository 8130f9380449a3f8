//! The init's reports to rbuild: [`StatusWriter`], its end of the status socket (one JSON
//! [`Status`] per line, see `shared::protocol`), and [`release_output`], how a process that
//! has nothing more to say lets go of rbuild's output pipes, so that rbuild sees their end
//! without waiting for that process to exit (and pay the namespaces' teardown).

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};

use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::stat::{fstat, SFlag};

use crate::shared::protocol::Status;

/// Where status lines go: the status pipe, or stderr when the init was started by hand.
pub(crate) struct StatusWriter(File);

impl StatusWriter {
    /// The status channel is the socket rbuild gave as stdin (duplicated close-on-exec, so
    /// that stdin can become /dev/null and the command never inherits it); when stdin is no
    /// socket (the init was started by hand), status lines go to stderr.
    pub(crate) fn open() -> StatusWriter {
        let socket = fstat(0).is_ok_and(|st| {
            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK
        });
        let from = if socket { 0 } else { 2 };
        let Ok(fd) = fcntl(from, FcntlArg::F_DUPFD_CLOEXEC(3)) else {
            std::process::exit(125);
        };
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor, owned by this writer from here on.
        StatusWriter(unsafe { File::from_raw_fd(fd) })
    }

    pub(crate) fn send(&mut self, status: &Status) {
        if let Ok(mut line) = serde_json::to_string(status) {
            line.push('\n');
            // Nobody to tell if the status pipe is gone: rbuild then reports a dead init.
            let _ = self.0.write_all(line.as_bytes());
        }
    }

    /// Closes the status pipe (points the writer at /dev/null): for a process that has nothing
    /// more to report, so that it does not hold the pipe open.
    pub(crate) fn release(&mut self) {
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2(null.as_raw_fd(), self.0.as_raw_fd());
        }
    }
}

/// Points stdout and stderr at /dev/null, so that this process no longer holds rbuild's output
/// pipes open: rbuild sees their end as soon as the command and pid 1 are done, without
/// waiting for this process to exit (and pay the namespaces' teardown).
pub(crate) fn release_output() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 2);
    }
}
