//! How rbuild starts the sandbox zygote and talks to it (rbuild's side is `launch::zygote`,
//! the zygote's `init::zygote`).
//!
//! The zygote is the init program run as `<init_exe>` [`INIT_ARG`] [`ZYGOTE_ARG`] (without
//! [`ZYGOTE_ARG`], the program is one run's init, started by hand). rbuild holds one end of a
//! `SOCK_SEQPACKET` pair (the zygote's stdin) and sends one message per run ([`send_run`]):
//! the namespaces the spec asks for (clone flags, 4 bytes little-endian), then the path of the
//! slirp4netns that gives the run its network (none for a run without a user-mode network),
//! with, as `SCM_RIGHTS`, the status socket, the stdout pipe and the stderr pipe
//! ([`RunFds`]). A run with slirp4netns may be cloned into a networked spare
//! (`init::spare_net`): its init then finds `tap0` up and waits for no go-ahead. The
//! zygote writes [`Status::Started`] with the init's pid on the status socket right after the
//! clone. To cancel a run, rbuild sends a kill message ([`send_kill`]: the init's pid and a
//! signal, [`KILL_LEN`] bytes, no descriptors); the zygote signals the pid only while it is
//! its unreaped child, so a reused pid is never hit. When the init is reaped, the zygote writes
//! [`Status::InitEnded`] on the status socket: a run whose init died without reporting learns
//! how it ended. The zygote reads both kinds with [`receive`].
//!
//! [`Status::Started`]: crate::shared::protocol::Status::Started
//! [`Status::InitEnded`]: crate::shared::protocol::Status::InitEnded

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::unistd::Pid;

/// `argv[1]` that makes a program act as the sandbox init (the crate's `init_main`).
pub const INIT_ARG: &str = "__rbuild-sandbox-init";

/// `argv[2]` (after [`INIT_ARG`]) that makes the init serve as the zygote.
pub(crate) const ZYGOTE_ARG: &str = "zygote";

/// Length of a kill message: the init's pid and the signal, 4 bytes little-endian each.
pub(crate) const KILL_LEN: usize = 8;

/// The descriptors of one run, handed to the zygote.
pub(crate) struct RunFds {
    /// The child's end of the status socket (its stdin).
    pub status: UnixStream,
    /// The write end of the stdout pipe.
    pub stdout: OwnedFd,
    /// The write end of the stderr pipe.
    pub stderr: OwnedFd,
}

/// One message from rbuild.
pub(crate) enum Message {
    /// Fork the init of a run.
    Run(Request),
    /// Send this signal to this init, if it is still an unreaped child.
    Kill { pid: Pid, signal: Signal },
}

/// One run's request as received.
pub(crate) struct Request {
    pub namespaces: CloneFlags,
    /// The slirp4netns the run's network is to be attached with, if any.
    pub network: Option<PathBuf>,
    pub fds: RunFds,
}

/// The longest message: a run's namespaces and a slirp4netns path of up to `PATH_MAX`.
const MAX_LEN: usize = 4 + libc::PATH_MAX as usize;

/// Sends the request of one run: its namespaces, the slirp4netns of its network (if any), and
/// its descriptors as `SCM_RIGHTS`.
pub(crate) fn send_run(
    control: &OwnedFd,
    namespaces: CloneFlags,
    network: Option<&Path>,
    fds: &RunFds,
) -> std::result::Result<(), Errno> {
    let mut message = namespaces.bits().to_le_bytes().to_vec();
    if let Some(path) = network {
        message.extend_from_slice(path.as_os_str().as_bytes());
    }
    if message.len() > MAX_LEN {
        return Err(Errno::ENAMETOOLONG);
    }
    let raw = [
        fds.status.as_raw_fd(),
        fds.stdout.as_raw_fd(),
        fds.stderr.as_raw_fd(),
    ];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(
        control.as_raw_fd(),
        &[IoSlice::new(&message)],
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map(|_| ())
}

/// Sends a kill message: `signal` for the init `pid`.
pub(crate) fn send_kill(
    control: &OwnedFd,
    pid: u32,
    signal: Signal,
) -> std::result::Result<(), Errno> {
    let mut message = [0u8; KILL_LEN];
    message[..4].copy_from_slice(&pid.to_le_bytes());
    message[4..].copy_from_slice(&(signal as i32).to_le_bytes());
    sendmsg::<()>(
        control.as_raw_fd(),
        &[IoSlice::new(&message)],
        &[],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map(|_| ())
}

/// Receives one message; `None` when rbuild has closed its end.
pub(crate) fn receive(control: &OwnedFd) -> std::result::Result<Option<Message>, Errno> {
    let mut payload = [0u8; MAX_LEN];
    let mut iov = [IoSliceMut::new(&mut payload)];
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
    let bytes = msg.bytes;
    let word =
        |i: usize| i32::from_le_bytes([payload[i], payload[i + 1], payload[i + 2], payload[i + 3]]);
    let mut fds = received.into_iter();
    match (bytes, fds.next(), fds.next(), fds.next()) {
        (4.., Some(status), Some(stdout), Some(stderr)) => Ok(Some(Message::Run(Request {
            namespaces: CloneFlags::from_bits_truncate(word(0)),
            network: (bytes > 4)
                .then(|| PathBuf::from(std::ffi::OsStr::from_bytes(&payload[4..bytes]))),
            fds: RunFds {
                status: UnixStream::from(status),
                stdout,
                stderr,
            },
        }))),
        (KILL_LEN, None, _, _) => match Signal::try_from(word(4)) {
            Ok(signal) => Ok(Some(Message::Kill {
                pid: Pid::from_raw(word(0)),
                signal,
            })),
            Err(_) => Err(Errno::EAGAIN),
        },
        // A malformed request: dropping what came closes it, and its run sees the end.
        _ => Err(Errno::EAGAIN),
    }
}

/// A close-on-exec `SOCK_SEQPACKET` pair: the zygote's channel, and the channels its spare
/// makers hand namespaces over.
pub(crate) fn seqpacket_pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
}
