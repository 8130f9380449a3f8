//! rbuild's side of a running sandbox's I/O, on the calling thread: the init's status lines
//! (one JSON [`Status`] per line on the status socket) and the command's stdout and stderr,
//! multiplexed with `poll` (no thread per stream, no per-run thread start).
//!
//! Output is handed to the log sink chunk by chunk as it is produced. The loop ends once the
//! status socket has given the command's end (or closed) and both output pipes are closed,
//! which happens when nothing in the sandbox runs any more (pid 1 lets go of them first).

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rbuild_ports::{LogSink, LogStream};

use crate::shared::error::{Result, SetupError};
use crate::shared::protocol::Status;

/// Status lines from the init, read as they come.
pub(crate) struct StatusReader<'a> {
    sock: &'a UnixStream,
    buf: Vec<u8>,
    closed: bool,
}

impl<'a> StatusReader<'a> {
    pub(crate) fn new(sock: &'a UnixStream) -> StatusReader<'a> {
        StatusReader {
            sock,
            buf: Vec::new(),
            closed: false,
        }
    }

    /// The next complete line in the buffer, decoded (blank lines skipped).
    fn buffered(&mut self) -> Result<Option<Status>> {
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return serde_json::from_slice(&line).map(Some).map_err(|source| {
                SetupError::Protocol {
                    what: "decode sandbox status",
                    source,
                }
            });
        }
        Ok(None)
    }

    /// One read from the socket (blocks unless it is readable); false at its end.
    fn fill(&mut self) -> Result<bool> {
        let mut chunk = [0u8; 8192];
        loop {
            let mut sock = self.sock;
            match sock.read(&mut chunk) {
                Ok(0) => {
                    self.closed = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // The other end went away without reading what we sent (the config, when the
                // init could not be started): what it said before is in `buf`, and says why.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    self.closed = true;
                    return Ok(false);
                }
                Err(e) => return Err(SetupError::io("read", "sandbox status socket", e)),
            }
        }
    }

    /// Waits for the next status; `None` at the end of the stream.
    #[cfg(test)]
    pub(crate) fn next(&mut self) -> Result<Option<Status>> {
        loop {
            if let Some(status) = self.buffered()? {
                return Ok(Some(status));
            }
            if self.closed || !self.fill()? {
                return Ok(None);
            }
        }
    }
}

/// Streams the command's output to `log` and collects status lines (each handed to
/// `on_status` as it arrives) until the command's end or the end of the status stream, and
/// until both outputs are closed.
pub(crate) fn collect(
    statuses: &mut StatusReader<'_>,
    stdout: std::io::PipeReader,
    stderr: std::io::PipeReader,
    log: &dyn LogSink,
    on_status: &mut dyn FnMut(&Status) -> Result<()>,
) -> Result<Vec<Status>> {
    let mut outputs = [
        (Some(stdout), LogStream::Stdout),
        (Some(stderr), LogStream::Stderr),
    ];
    let mut out = Vec::new();
    let mut ended = false;
    let mut chunk = [0u8; 8192];
    loop {
        // Whole lines already buffered first: they need no poll.
        while !ended {
            let Some(status) = statuses.buffered()? else {
                break;
            };
            on_status(&status)?;
            ended = matches!(status, Status::Exited(_) | Status::Signaled(_));
            out.push(status);
        }
        let want_status = !ended && !statuses.closed;
        if !want_status && outputs.iter().all(|(pipe, _)| pipe.is_none()) {
            return Ok(out);
        }
        let (ready_status, ready_out) = {
            let mut fds = Vec::with_capacity(3);
            if want_status {
                fds.push(PollFd::new(statuses.sock.as_fd(), PollFlags::POLLIN));
            }
            let open: Vec<usize> = (0..outputs.len())
                .filter(|&i| outputs[i].0.is_some())
                .collect();
            for &i in &open {
                if let Some(pipe) = &outputs[i].0 {
                    fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
                }
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(SetupError::sys("poll the sandbox's status and output", e)),
            }
            let ready = |fd: &PollFd| fd.any().unwrap_or(true);
            let first_out = usize::from(want_status);
            let ready_status = want_status && ready(&fds[0]);
            let ready_out: Vec<usize> = open
                .iter()
                .enumerate()
                .filter(|(k, _)| ready(&fds[first_out + k]))
                .map(|(_, &i)| i)
                .collect();
            (ready_status, ready_out)
        };
        for i in ready_out {
            let (pipe, stream) = &mut outputs[i];
            if let Some(reader) = pipe {
                match reader.read(&mut chunk) {
                    Ok(0) => *pipe = None,
                    Ok(n) => log.write(*stream, &chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // Nothing more can come from a broken pipe.
                    Err(_) => *pipe = None,
                }
            }
        }
        if ready_status {
            statuses.fill()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A peer that answered and then went away without reading what it was sent (the zygote
    /// after failing to start an init, which never read the config): its answer is read, then
    /// the stream ends, rather than a "connection reset" that hides the answer.
    #[test]
    fn a_peer_gone_without_reading_leaves_its_answer_readable() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        (&ours)
            .write_all(b"a config the peer never reads\n")
            .unwrap();
        let line =
            serde_json::to_string(&Status::SetupFailed("fork the sandbox init: EPERM".into()))
                .unwrap();
        theirs.write_all(format!("{line}\n").as_bytes()).unwrap();
        drop(theirs);
        let mut reader = StatusReader::new(&ours);
        assert_eq!(
            reader.next().unwrap(),
            Some(Status::SetupFailed("fork the sandbox init: EPERM".into()))
        );
        assert_eq!(reader.next().unwrap(), None);
    }
}
