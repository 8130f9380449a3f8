//! Namespaces made ahead by the zygote: a network, IPC and UTS namespace for the next run,
//! created while the current one runs.
//!
//! A new network namespace costs about 0.5 ms (devices, sysctl tables, `lo`), the largest
//! single step of a sandbox's setup. The zygote forks a helper that unshares the three
//! namespaces, brings `lo` up and says so on a pipe, then waits to be killed; the zygote opens
//! the helper's `/proc/<pid>/ns/*` files (which keep the namespaces alive), kills it and hands
//! the descriptors to the next init, which `setns`es into them. A spare is used by one run
//! only, so no run sees another's namespace. Nothing of a spare is shared with the host: it
//! is as fresh as an unshare in the init would make it. Spares whose user-mode network is up
//! already are `init::spare_net`'s.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{fork, ForkResult, Pid};

use crate::init::loopback::loopback_up;
use crate::shared::pdeathsig::set_pdeathsig;

/// The namespaces a spare provides.
pub(crate) const SPARE_FLAGS: CloneFlags = CloneFlags::CLONE_NEWNET
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWUTS);

/// A ready set of namespaces: one descriptor per namespace.
pub(crate) struct Spare {
    net: File,
    ipc: File,
    uts: File,
}

impl Spare {
    /// A spare of these namespace descriptors (`init::spare_net` makes networked ones).
    pub(crate) fn new(net: impl Into<File>, ipc: impl Into<File>, uts: impl Into<File>) -> Spare {
        Spare {
            net: net.into(),
            ipc: ipc.into(),
            uts: uts.into(),
        }
    }

    /// Joins the spare's namespaces of `wanted` (the calling process must be single-threaded)
    /// and returns those it joined.
    pub(crate) fn enter(&self, wanted: CloneFlags) -> CloneFlags {
        let mut entered = CloneFlags::empty();
        for (file, flag) in [
            (&self.net, CloneFlags::CLONE_NEWNET),
            (&self.ipc, CloneFlags::CLONE_NEWIPC),
            (&self.uts, CloneFlags::CLONE_NEWUTS),
        ] {
            if wanted.contains(flag) && setns(file.as_fd(), flag).is_ok() {
                entered |= flag;
            }
        }
        entered
    }
}

/// A helper on its way to making a spare.
pub(crate) struct Making {
    helper: Pid,
    ready: File,
}

impl Making {
    /// Forks the helper (the zygote must be single-threaded). `None` if it cannot be forked:
    /// runs then unshare their namespaces themselves.
    pub(crate) fn start() -> Option<Making> {
        let (ready_r, ready_w) = std::io::pipe().ok()?;
        // SAFETY: the zygote is single-threaded.
        match unsafe { fork() }.ok()? {
            ForkResult::Child => helper(ready_w),
            ForkResult::Parent { child } => {
                drop(ready_w);
                Some(Making {
                    helper: child,
                    ready: File::from(OwnedFd::from(ready_r)),
                })
            }
        }
    }

    /// The pipe that becomes readable when the helper is done (or died).
    pub(crate) fn ready_fd(&self) -> BorrowedFd<'_> {
        self.ready.as_fd()
    }

    /// Takes the helper's namespaces once it said it is done, and kills it (the zygote reaps
    /// it with its other children). `None` if the helper failed.
    pub(crate) fn finish(mut self) -> Option<Spare> {
        let mut byte = [0u8; 1];
        let done = matches!(self.ready.read(&mut byte), Ok(1)) && byte[0] == b'1';
        let open = |name: &str| File::open(format!("/proc/{}/ns/{name}", self.helper)).ok();
        let spare = if done {
            match (open("net"), open("ipc"), open("uts")) {
                (Some(net), Some(ipc), Some(uts)) => Some(Spare { net, ipc, uts }),
                _ => None,
            }
        } else {
            None
        };
        let _ = nix::sys::signal::kill(self.helper, nix::sys::signal::Signal::SIGKILL);
        spare
    }
}

/// The helper: unshares, brings `lo` up, reports, and waits to be killed (or for the zygote
/// to die).
fn helper(ready: std::io::PipeWriter) -> ! {
    if set_pdeathsig().is_err() {
        std::process::exit(1);
    }
    // Hold none of the zygote's descriptors (runs' status sockets) but the pipe.
    let keep = ready.as_raw_fd() as u32;
    // libc: nix 0.29 has no close_range.
    // SAFETY: close_range with plain integer arguments.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, keep - 1, 0u32);
        libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32);
    }
    let ok = unshare(SPARE_FLAGS).is_ok() && loopback_up().is_ok();
    let mut ready = ready;
    let _ = ready.write_all(if ok { b"1" } else { b"0" });
    loop {
        nix::unistd::pause();
    }
}
