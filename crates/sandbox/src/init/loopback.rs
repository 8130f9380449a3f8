//! Loopback inside the sandbox: a new network namespace starts with `lo` down; this brings it
//! up. Outbound access for `NetworkMode::Default` is `launch::slirp`'s job.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use crate::shared::error::{Result, SetupError};

/// Sets the IFF_UP flag on the loopback interface of the current network namespace.
pub fn loopback_up() -> Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| SetupError::sys("socket for loopback setup", e))?;
    // libc for the interface ioctls below: nix has no call for SIOCGIFFLAGS/SIOCSIFFLAGS.
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of the ifreq we own.
    if unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
        )
    } < 0
    {
        return Err(SetupError::sys("get flags of lo", Errno::last()));
    }
    // SAFETY: the flags member is the active one after SIOCGIFFLAGS.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as libc::Ioctl, &req) } < 0 {
        return Err(SetupError::sys("bring lo up", Errno::last()));
    }
    Ok(())
}
