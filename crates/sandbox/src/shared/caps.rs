//! Linux capabilities: the numbers behind oci-spec's [`Capability`] names, Docker's default set,
//! and applying a set to the current process (bounding set, then permitted/effective/
//! inheritable through `capset(2)`).

use std::collections::HashSet;

use nix::errno::Errno;
use oci_spec::runtime::{Capability, LinuxCapabilities};

use crate::shared::error::{Result, SetupError};

/// Docker's default capability set, with the kernel's number of each.
pub const DOCKER_DEFAULT_CAPS: &[(Capability, u32)] = &[
    (Capability::Chown, 0),
    (Capability::DacOverride, 1),
    (Capability::Fowner, 3),
    (Capability::Fsetid, 4),
    (Capability::Kill, 5),
    (Capability::Setgid, 6),
    (Capability::Setuid, 7),
    (Capability::Setpcap, 8),
    (Capability::NetBindService, 10),
    (Capability::NetRaw, 13),
    (Capability::SysChroot, 18),
    (Capability::Mknod, 27),
    (Capability::AuditWrite, 29),
    (Capability::Setfcap, 31),
];

/// The kernel's number for `cap`.
pub fn number(cap: Capability) -> u32 {
    use Capability as C;
    match cap {
        C::Chown => 0,
        C::DacOverride => 1,
        C::DacReadSearch => 2,
        C::Fowner => 3,
        C::Fsetid => 4,
        C::Kill => 5,
        C::Setgid => 6,
        C::Setuid => 7,
        C::Setpcap => 8,
        C::LinuxImmutable => 9,
        C::NetBindService => 10,
        C::NetBroadcast => 11,
        C::NetAdmin => 12,
        C::NetRaw => 13,
        C::IpcLock => 14,
        C::IpcOwner => 15,
        C::SysModule => 16,
        C::SysRawio => 17,
        C::SysChroot => 18,
        C::SysPtrace => 19,
        C::SysPacct => 20,
        C::SysAdmin => 21,
        C::SysBoot => 22,
        C::SysNice => 23,
        C::SysResource => 24,
        C::SysTime => 25,
        C::SysTtyConfig => 26,
        C::Mknod => 27,
        C::Lease => 28,
        C::AuditWrite => 29,
        C::AuditControl => 30,
        C::Setfcap => 31,
        C::MacOverride => 32,
        C::MacAdmin => 33,
        C::Syslog => 34,
        C::WakeAlarm => 35,
        C::BlockSuspend => 36,
        C::AuditRead => 37,
        C::Perfmon => 38,
        C::Bpf => 39,
        C::CheckpointRestore => 40,
    }
}

/// A set of capability numbers as the two 32-bit words `capset(2)` wants.
fn words(set: &Option<HashSet<Capability>>) -> [u32; 2] {
    let mut out = [0u32; 2];
    for cap in set.iter().flatten() {
        let n = number(*cap);
        out[(n / 32) as usize] |= 1 << (n % 32);
    }
    out
}

/// The highest capability the running kernel knows.
pub(crate) fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Drops every capability not in `caps.bounding` from the bounding set. Needs CAP_SETPCAP,
/// so call it before changing user.
pub fn drop_bounding(caps: &LinuxCapabilities) -> Result<()> {
    let keep: HashSet<u32> = caps
        .bounding()
        .iter()
        .flatten()
        .map(|c| number(*c))
        .collect();
    for n in 0..=last_cap() {
        if keep.contains(&n) {
            continue;
        }
        // libc: nix has no PR_CAPBSET_DROP.
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            let err = Errno::last();
            // EINVAL: the kernel does not know this capability; nothing to drop.
            if err != Errno::EINVAL {
                return Err(SetupError::sys("drop capability from bounding set", err));
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Sets the permitted, effective and inheritable sets of the calling thread to `caps`.
/// Call it after changing user: `setuid` to a non-root user clears them, and a non-root user
/// keeps none (Docker's behaviour).
pub fn apply_sets(caps: &LinuxCapabilities) -> Result<()> {
    let eff = words(caps.effective());
    let perm = words(caps.permitted());
    let inh = words(caps.inheritable());
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: eff[0],
            permitted: perm[0],
            inheritable: inh[0],
        },
        CapData {
            effective: eff[1],
            permitted: perm[1],
            inheritable: inh[1],
        },
    ];
    // libc: nix has no capset.
    // SAFETY: capset reads a header and two data structs laid out as the kernel expects
    // (_LINUX_CAPABILITY_VERSION_3); both live for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(SetupError::sys("capset", Errno::last()));
    }
    Ok(())
}

/// The calling thread's permitted set, as capability numbers' bits (`capget(2)`).
pub fn permitted_now() -> Result<u64> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // libc: nix has no capget.
    // SAFETY: capget writes two data structs laid out as the kernel expects (version 3).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(SetupError::sys("capget", Errno::last()));
    }
    Ok(u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32))
}

/// `caps` without the capabilities not in `held` (bits by number): a process can keep only
/// what it has (a chroot RUN in a container that dropped, say, CAP_NET_RAW).
pub fn restrict(caps: &LinuxCapabilities, held: u64) -> LinuxCapabilities {
    let keep = |set: &Option<HashSet<Capability>>| {
        set.as_ref().map(|s| {
            s.iter()
                .copied()
                .filter(|c| held & (1u64 << number(*c)) != 0)
                .collect::<HashSet<_>>()
        })
    };
    let mut out = caps.clone();
    out.set_bounding(keep(caps.bounding()));
    out.set_effective(keep(caps.effective()));
    out.set_permitted(keep(caps.permitted()));
    out.set_inheritable(keep(caps.inheritable()));
    out.set_ambient(keep(caps.ambient()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_matches_numbers() {
        for (cap, n) in DOCKER_DEFAULT_CAPS {
            assert_eq!(number(*cap), *n, "{cap:?}");
        }
    }

    #[test]
    fn restrict_keeps_only_what_is_held() {
        let set: HashSet<Capability> = [Capability::Chown, Capability::NetRaw]
            .into_iter()
            .collect();
        let mut caps = LinuxCapabilities::default();
        caps.set_bounding(Some(set.clone()));
        caps.set_permitted(Some(set));
        let out = restrict(&caps, 1 << number(Capability::Chown));
        let only_chown: HashSet<Capability> = [Capability::Chown].into_iter().collect();
        assert_eq!(out.bounding().as_ref(), Some(&only_chown));
        assert_eq!(out.permitted().as_ref(), Some(&only_chown));
        assert_eq!(
            permitted_now().expect("capget") != 0,
            nix::unistd::geteuid().is_root()
        );
    }

    #[test]
    fn words_split_at_32() {
        let set: HashSet<Capability> = [Capability::Chown, Capability::Setfcap, Capability::Bpf]
            .into_iter()
            .collect();
        assert_eq!(words(&Some(set)), [1 | (1 << 31), 1 << 7]);
    }
}
