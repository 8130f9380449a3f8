//! The parity floor's spare namespaces: a network, IPC and UTS namespace made ahead of a run
//! (as rbuild's zygote makes them, `init::spare_ns`) with `lo` up, and joined by the run's pid 1
//! with `setns`. Made by the bench process itself: `unshare`, `lo` up, the three
//! `/proc/thread-self/ns/*` files opened, and back into the host's namespaces with `setns`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The namespaces a spare holds, with the `setns` type of each.
const KINDS: [(&str, libc::c_int); 3] = [
    ("net", libc::CLONE_NEWNET),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
];

/// One descriptor per namespace of `KINDS`, in that order.
pub struct Namespaces([OwnedFd; 3]);

impl Namespaces {
    /// The calling thread's own namespaces of `KINDS` (the host's, to come back to).
    pub fn current() -> Namespaces {
        Namespaces(KINDS.map(|(name, _)| open_ns(name)))
    }

    /// A fresh spare: unshares the three namespaces, brings `lo` up, keeps them, and returns
    /// the caller to `host`.
    pub fn make(host: &Namespaces) -> Namespaces {
        // SAFETY: unshare with constant flags; the bench process is single-threaded.
        let rc =
            unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        loopback_up();
        let spare = Namespaces::current();
        assert!(host.join(), "setns back to the host's namespaces");
        spare
    }

    /// Joins these namespaces (in the run's pid 1); false if a `setns` failed.
    pub fn join(&self) -> bool {
        self.0.iter().zip(KINDS).all(|(fd, (_, kind))| {
            // SAFETY: setns on a namespace descriptor we own.
            unsafe { libc::setns(fd.as_raw_fd(), kind) == 0 }
        })
    }
}

fn open_ns(name: &str) -> OwnedFd {
    let path = CString::new(format!("/proc/thread-self/ns/{name}")).expect("no NUL");
    // SAFETY: open of a NUL-terminated path; the descriptor is owned below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    assert!(
        fd >= 0,
        "open {path:?}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Sets IFF_UP on `lo` of the current network namespace (SIOCGIFFLAGS, SIOCSIFFLAGS).
fn loopback_up() {
    // SAFETY: socket with constant arguments; owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: the ioctls read and write the ifreq we own; after SIOCGIFFLAGS the flags member
    // is the active one.
    unsafe {
        let got = libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
        );
        assert_eq!(got, 0, "SIOCGIFFLAGS lo");
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        let set = libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as libc::Ioctl, &req);
        assert_eq!(set, 0, "SIOCSIFFLAGS lo");
    }
}
