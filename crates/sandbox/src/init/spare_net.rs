//! Networked spares: network (and IPC, UTS) namespaces whose user-mode network is up before a
//! run asks for one. slirp4netns takes milliseconds to configure `tap0`; a default-network run
//! that joins a networked spare starts its command without waiting for it.
//!
//! The zygote keeps two ready or in the making ([`NetPool`]), replenished after each run that
//! asked for slirp4netns, while that run goes on. Each maker, a child of the zygote, stays in
//! the zygote's namespaces and forks a process that unshares the three namespaces, brings `lo`
//! up and hands them back on a socket pair; the maker passes them on to the zygote on the pool's socket (one
//! `SCM_RIGHTS` record), then execs slirp4netns on its copy of the network namespace
//! (`--netns-type=path /proc/self/fd/N`: no pid to race with), with that same socket as its
//! `--ready-fd`: the zygote's second record is slirp4netns's "1", once `tap0` is configured.
//! Unsharing in a child keeps slirp4netns itself in rbuild's namespaces, from which it makes the
//! outbound connections, also rootless (no `setns` back into the host's network namespace,
//! which a user namespace's root may not do).
//!
//! Properties the sandbox relies on:
//! - a networked spare is used by one run only, and only by a run that asked for slirp4netns
//!   (`--network=none` and host runs never get one: they have no slirp4netns in their
//!   request);
//! - slirp4netns is the zygote's child: killed once the run's init is reaped (or when the
//!   spare is discarded) and reaped by the zygote's loop, and killed and reaped when the zygote
//!   exits; should the zygote die, it dies too (`PR_SET_PDEATHSIG`, and its `--exit-fd`, whose
//!   other end only the zygote holds);
//! - when a spare is not ready (the first run, or runs quicker than slirp4netns), the run takes
//!   the way it always had: rbuild attaches a slirp4netns of its own to the run's namespace.
//!   A maker that fails (no `/dev/net/tun`, slirp4netns refuses) is not tried again for the
//!   same slirp4netns.

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::io::IoSlice;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sched::unshare;
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

use crate::init::loopback::loopback_up;
use crate::init::spare_ns::{Spare, SPARE_FLAGS};
use crate::shared::pdeathsig::set_pdeathsig;
use crate::shared::trace;
use crate::shared::zygote_protocol::seqpacket_pair;

/// The record the maker sends with the namespaces.
const NAMESPACES: &[u8] = b"n";
/// What slirp4netns writes on its ready fd once `tap0` is configured.
const READY: &[u8] = b"1";

/// A running slirp4netns of a spare, as the zygote holds it.
struct Attached {
    slirp: Pid,
    /// The write end of slirp4netns's `--exit-fd`: closing it also stops slirp4netns.
    _exit: OwnedFd,
}

impl Attached {
    /// Stops slirp4netns at once (its graceful exit through the exit fd takes ≈ 20 ms, for
    /// nothing: the namespace goes with the run); the zygote's loop reaps it.
    fn stop(self) {
        let _ = kill(self.slirp, Signal::SIGKILL);
    }
}

/// A networked spare ready for a run.
pub(crate) struct NetSpare {
    pub(crate) spare: Spare,
    attached: Attached,
}

/// A maker on its way, and how far it got.
struct Making {
    socket: OwnedFd,
    attached: Attached,
    /// The namespaces, once the maker sent them.
    spare: Option<Spare>,
}

/// How many networked spares the zygote keeps ready or in the making. One was not always
/// enough on a loaded machine: slirp4netns, started when a run takes a spare, was not always
/// ready by the next run (5 of 19 steps of a build, at load 5); with two, the spare a run takes
/// was started a run earlier.
const TARGET: usize = 2;

/// The networked spares of one zygote: up to [`TARGET`] ready or in the making, for the
/// slirp4netns of the last run that asked for one.
#[derive(Default)]
pub(crate) struct NetPool {
    exe: Option<PathBuf>,
    making: Vec<Making>,
    /// Oldest first.
    ready: VecDeque<NetSpare>,
    /// slirp4netns of runs, by their init's pid.
    in_use: HashMap<Pid, Attached>,
    /// slirp4netns that failed to make a spare: not tried again.
    failed: Vec<PathBuf>,
}

impl NetPool {
    /// The sockets to poll while spares are being made, in the order [`NetPool::progress`]
    /// takes their readiness.
    pub(crate) fn making_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.making.iter().map(|m| m.socket.as_fd())
    }

    /// Takes the oldest ready spare if it was made with slirp4netns `exe`.
    pub(crate) fn take(&mut self, exe: &Path) -> Option<NetSpare> {
        if self.exe.as_deref() != Some(exe) {
            return None;
        }
        let spare = self.ready.pop_front();
        trace::mark(if spare.is_some() {
            "zygote: networked spare taken"
        } else {
            "zygote: no networked spare ready"
        });
        spare
    }

    /// The run of `init` uses `spare`: its slirp4netns lives until the init is reaped.
    pub(crate) fn in_use(&mut self, init: Option<Pid>, spare: NetSpare) {
        match init {
            Some(pid) => {
                self.in_use.insert(pid, spare.attached);
            }
            None => spare.attached.stop(),
        }
    }

    /// Starts making spares for slirp4netns `exe` up to [`TARGET`] ready or on their way (the
    /// spares of another slirp4netns are discarded).
    pub(crate) fn replenish(&mut self, exe: &Path) {
        if self.exe.as_deref() != Some(exe) {
            self.discard();
            self.exe = Some(exe.to_path_buf());
        }
        while self.ready.len() + self.making.len() < TARGET && !self.failed.iter().any(|f| f == exe)
        {
            match start(exe) {
                Some(making) => self.making.push(making),
                None => self.failed.push(exe.to_path_buf()),
            }
        }
    }

    /// The makers' sockets were polled (`readable`, in [`NetPool::making_fds`]'s order): takes
    /// the namespaces, then slirp4netns's ready byte, from each readable one.
    pub(crate) fn progress(&mut self, readable: &[bool]) {
        for i in (0..self.making.len().min(readable.len())).rev() {
            if readable[i] {
                let making = self.making.remove(i);
                self.progress_one(making);
            }
        }
    }

    fn progress_one(&mut self, mut making: Making) {
        match receive(&making.socket, false) {
            Ok((bytes, fds)) if bytes == NAMESPACES && fds.len() == 3 && making.spare.is_none() => {
                let mut fds = fds.into_iter();
                if let (Some(net), Some(ipc), Some(uts)) = (fds.next(), fds.next(), fds.next()) {
                    making.spare = Some(Spare::new(net, ipc, uts));
                }
                self.making.push(making);
            }
            Ok((bytes, fds)) if bytes == READY && fds.is_empty() && making.spare.is_some() => {
                if let Some(spare) = making.spare {
                    trace::mark("zygote: networked spare ready");
                    self.ready.push_back(NetSpare {
                        spare,
                        attached: making.attached,
                    });
                }
            }
            Err(Errno::EINTR | Errno::EAGAIN) => self.making.push(making),
            // The end of the socket (the maker or slirp4netns failed), or anything else.
            other => {
                trace::mark(&format!("zygote: networked spare failed: {other:?}"));
                making.attached.stop();
                if let Some(exe) = &self.exe {
                    self.failed.push(exe.clone());
                }
            }
        }
    }

    /// The zygote reaped `pid`: a run's init (its slirp4netns is stopped now) or a
    /// slirp4netns (never to be signalled again: its pid may be reused).
    pub(crate) fn reaped(&mut self, pid: Pid) {
        if let Some(attached) = self.in_use.remove(&pid) {
            attached.stop();
        }
        self.in_use.retain(|_, a| a.slirp != pid);
        // slirp4netns died before a run took its spare: the spare has no network.
        self.ready.retain(|r| r.attached.slirp != pid);
        let before = self.making.len();
        self.making.retain(|m| m.attached.slirp != pid);
        if self.making.len() < before {
            // The maker or slirp4netns died before the spare was ready (nothing to kill any
            // more): this slirp4netns does not work here.
            trace::mark("zygote: networked spare's slirp4netns exited");
            if let Some(exe) = &self.exe {
                self.failed.push(exe.clone());
            }
        }
    }

    /// The zygote is exiting: stops every slirp4netns and reaps it, so that none is left a
    /// zombie for whoever inherits it.
    pub(crate) fn shutdown(&mut self) {
        let mut all: Vec<Attached> = self.in_use.drain().map(|(_, a)| a).collect();
        all.extend(self.ready.drain(..).map(|r| r.attached));
        all.extend(self.making.drain(..).map(|m| m.attached));
        for attached in all {
            let pid = attached.slirp;
            attached.stop();
            let _ = waitpid(pid, None);
        }
    }

    fn discard(&mut self) {
        for ready in self.ready.drain(..) {
            ready.attached.stop();
        }
        for making in self.making.drain(..) {
            making.attached.stop();
        }
    }
}

/// Forks the maker for slirp4netns `exe` (the zygote must be single-threaded). `None` if it
/// cannot be forked.
fn start(exe: &Path) -> Option<Making> {
    let (ours, theirs) = seqpacket_pair().ok()?;
    let (exit_r, exit_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ok()?;
    // Everything the maker allocates is made here, before the fork.
    let exe_c = CString::new(exe.as_os_str().as_bytes()).ok()?;
    // SAFETY: the zygote is single-threaded.
    match unsafe { fork() }.ok()? {
        ForkResult::Child => maker(&exe_c, theirs, exit_r),
        ForkResult::Parent { child } => {
            trace::mark("zygote: networked spare started");
            Some(Making {
                socket: ours,
                attached: Attached {
                    slirp: child,
                    _exit: exit_w,
                },
                spare: None,
            })
        }
    }
}

/// Receives one record and the descriptors that came with it (`wait`: blocking until one
/// comes); `Err(EPIPE)` at the end.
fn receive(socket: &OwnedFd, wait: bool) -> Result<(Vec<u8>, Vec<OwnedFd>), Errno> {
    let flags = if wait {
        MsgFlags::MSG_CMSG_CLOEXEC
    } else {
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT
    };
    let mut payload = [0u8; 8];
    let mut iov = [IoSliceMut::new(&mut payload)];
    let mut space = nix::cmsg_space!([RawFd; 3]);
    let msg = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), flags)?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            // SAFETY: descriptors passed to us are ours to own.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let bytes = msg.bytes;
    if bytes == 0 && fds.is_empty() {
        return Err(Errno::EPIPE);
    }
    Ok((payload[..bytes].to_vec(), fds))
}

fn fail() -> ! {
    std::process::exit(1)
}

/// Closes every descriptor from 3 up but those of `keep`.
fn close_all_but(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut from = 3u32;
    for &fd in keep.iter() {
        let fd = fd as u32;
        if fd > from {
            // libc: nix 0.29 has no close_range.
            // SAFETY: close_range with plain integer arguments.
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32) };
        }
        from = from.max(fd + 1);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

/// The maker (see the module docs). Never returns: it execs slirp4netns or exits.
fn maker(exe: &CString, socket: OwnedFd, exit_r: OwnedFd) -> ! {
    if set_pdeathsig().is_err() {
        fail();
    }
    // fd 0 was the zygote's control socket: 0, 1 and 2 become /dev/null; of the rest, only
    // the socket and the exit fd stay (other runs' pipes must not be held open).
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        fail()
    };
    for to in 0..3 {
        if nix::unistd::dup2(null.as_raw_fd(), to).is_err() {
            fail();
        }
    }
    drop(null);
    let (sock_fd, exit_fd) = (socket.as_raw_fd(), exit_r.as_raw_fd());
    close_all_but(&mut [sock_fd, exit_fd]);
    trace::descriptors_closed();
    let Some(namespaces) = namespaces() else {
        fail()
    };
    let raw: Vec<RawFd> = namespaces.iter().map(AsRawFd::as_raw_fd).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    if sendmsg::<()>(
        sock_fd,
        &[IoSlice::new(NAMESPACES)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .is_err()
    {
        fail();
    }
    // slirp4netns keeps the network namespace's descriptor (its path names the namespace);
    // the IPC and UTS ones are the zygote's now.
    let [net, ipc, uts] = namespaces;
    drop((ipc, uts));
    for fd in [net.as_raw_fd(), sock_fd, exit_fd] {
        if fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).is_err() {
            fail();
        }
    }
    let args = [
        exe.clone(),
        c"--configure".into(),
        c"--mtu=65520".into(),
        c"--disable-host-loopback".into(),
        c"--netns-type=path".into(),
        arg(format!("--ready-fd={sock_fd}")),
        arg(format!("--exit-fd={exit_fd}")),
        arg(format!("/proc/self/fd/{}", net.as_raw_fd())),
        c"tap0".into(),
    ];
    let _ = nix::unistd::execv(exe, &args);
    fail()
}

fn arg(text: String) -> CString {
    CString::new(text).unwrap_or_else(|_| fail())
}

/// In the maker: a child unshares the spare's namespaces, brings `lo` up and sends them back;
/// `[net, ipc, uts]`, or `None` if that failed.
fn namespaces() -> Option<[OwnedFd; 3]> {
    let (ours, theirs) = seqpacket_pair().ok()?;
    // SAFETY: the maker is single-threaded.
    match unsafe { fork() }.ok()? {
        ForkResult::Child => {
            drop(ours);
            let made =
                set_pdeathsig().is_ok() && unshare(SPARE_FLAGS).is_ok() && loopback_up().is_ok();
            let files = ["net", "ipc", "uts"]
                .map(|name| std::fs::File::open(format!("/proc/self/ns/{name}")).ok());
            if made && files.iter().all(Option::is_some) {
                let raw: Vec<RawFd> = files.iter().flatten().map(AsRawFd::as_raw_fd).collect();
                let cmsg = [ControlMessage::ScmRights(&raw)];
                let _ = sendmsg::<()>(
                    theirs.as_raw_fd(),
                    &[IoSlice::new(NAMESPACES)],
                    &cmsg,
                    MsgFlags::empty(),
                    None,
                );
            }
            std::process::exit(0)
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            let received = loop {
                match receive(&ours, true) {
                    Err(Errno::EINTR) => continue,
                    other => break other,
                }
            };
            let _ = waitpid(child, None);
            let (bytes, fds) = received.ok()?;
            let [net, ipc, uts]: [OwnedFd; 3] = fds.try_into().ok()?;
            (bytes == NAMESPACES).then_some([net, ipc, uts])
        }
    }
}
