//! `RUN --security=insecure`: what BuildKit's `security.insecure` entitlement gives, which is
//! close to `docker run --privileged`. [`apply`] turns the default spec into:
//! - every capability the kernel knows (bounding, effective, permitted, inheritable);
//! - no seccomp filter and no no_new_privs (set-id programs work);
//! - no masked and no read-only paths (/proc/sys, /proc/sysrq-trigger… are writable);
//! - /sys mounted read-write;
//! - a device cgroup allowing every character and block device (for an OCI runtime), and,
//!   besides the default /dev nodes, the host's `/dev/fuse`, `/dev/cuse`, `/dev/net/tun`,
//!   `/dev/kvm`, `/dev/loop-control` and `/dev/kmsg` when the host has them (BuildKit's
//!   list). Unlike BuildKit, no `/dev/loopN` block devices are created: a command that needs
//!   one can make it (it holds CAP_MKNOD and CAP_SYS_ADMIN).
//!
//! The namespaces stay (pid, mount, uts, ipc and network unless `--network=host`): writes
//! to /proc/sys/net reach the sandbox's own network namespace, not the host's. Everything
//! else an insecure command does (mounts, modules, raw devices) reaches the host kernel: the
//! build must opt in explicitly.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, Spec,
};

use crate::shared::caps;
use crate::shared::error::Result;

/// Character devices an insecure RUN gets when the host has them: (path, major, minor).
const HOST_DEVICES: &[(&str, i64, i64)] = &[
    ("/dev/kmsg", 1, 11),
    ("/dev/cuse", 10, 203),
    ("/dev/fuse", 10, 229),
    ("/dev/kvm", 10, 232),
    ("/dev/net/tun", 10, 200),
    ("/dev/loop-control", 10, 237),
];

/// Every capability rbuild itself holds (its effective set, as BuildKit grants "all current
/// capabilities": one rbuild lacks cannot be given), or, when that cannot be read, every
/// capability the running kernel knows.
fn all_caps() -> Capabilities {
    let last = caps::last_cap();
    let held = own_effective_caps();
    ALL_CAPS
        .iter()
        .copied()
        .filter(|c| {
            let n = caps::number(*c);
            n <= last && held.is_none_or(|set| set & (1u64 << n) != 0)
        })
        .collect()
}

/// The `CapEff` mask of this process.
fn own_effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Every capability oci-spec names.
const ALL_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// Turns the default sandbox spec into the insecure one (see the module docs).
pub(crate) fn apply(spec: &mut Spec) -> Result<()> {
    if let Some(process) = spec.process_mut() {
        let caps = all_caps();
        if let Some(mut set) = process.capabilities().clone() {
            set.set_bounding(Some(caps.clone()));
            set.set_effective(Some(caps.clone()));
            set.set_permitted(Some(caps.clone()));
            set.set_inheritable(Some(caps));
            process.set_capabilities(Some(set));
        }
        process.set_no_new_privileges(Some(false));
    }
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/sys"))
        {
            if let Some(options) = m.options_mut() {
                options.retain(|o| o != "ro");
                options.push("rw".into());
            }
        }
    }
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(None);
        linux.set_masked_paths(Some(Vec::new()));
        linux.set_readonly_paths(Some(Vec::new()));
        let mut rules = Vec::new();
        for typ in [LinuxDeviceType::C, LinuxDeviceType::B] {
            rules.push(
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(typ)
                    .access("rwm")
                    .build()?,
            );
        }
        if let Some(resources) = linux.resources_mut() {
            resources.set_devices(Some(rules));
        }
        let devices = linux.devices_mut().get_or_insert_with(Vec::new);
        for (path, major, minor) in HOST_DEVICES {
            if !host_has(path, *major, *minor) {
                continue;
            }
            devices.push(
                LinuxDeviceBuilder::default()
                    .path(*path)
                    .typ(LinuxDeviceType::C)
                    .major(*major)
                    .minor(*minor)
                    .file_mode(0o600u32)
                    .uid(0u32)
                    .gid(0u32)
                    .build()?,
            );
        }
    }
    Ok(())
}

/// Whether the host has the character device `major:minor` at `path`.
fn host_has(path: &str, major: i64, minor: i64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| {
        m.file_type().is_char_device()
            && nix::sys::stat::major(m.rdev()) as i64 == major
            && nix::sys::stat::minor(m.rdev()) as i64 == minor
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::spec::build_spec;
    use crate::launch::spec::fixtures::etc;
    use rbuild_graph::{ExecOp, NetworkMode, SecurityMode};

    fn op(security: SecurityMode) -> ExecOp {
        crate::launch::spec::fixtures::op(NetworkMode::None, security)
    }

    #[test]
    fn insecure_spec_lifts_the_sandbox() {
        let spec = build_spec(&op(SecurityMode::Insecure), Path::new("/r"), &etc()).expect("spec");
        let process = spec.process().as_ref().expect("process");
        let caps = process.capabilities().as_ref().expect("caps");
        let bounding = caps.bounding().as_ref().expect("bounding");
        let held = own_effective_caps().expect("CapEff");
        assert_eq!(bounding.len() as u32, held.count_ones());
        if held & (1 << 21) != 0 {
            assert!(bounding.contains(&Capability::SysAdmin));
        }
        assert_eq!(process.no_new_privileges(), Some(false));
        let linux = spec.linux().as_ref().expect("linux");
        assert!(linux.seccomp().is_none());
        assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
        assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
        let sys = spec
            .mounts()
            .iter()
            .flatten()
            .find(|m| m.destination() == Path::new("/sys"))
            .expect("sys");
        assert!(!sys.options().iter().flatten().any(|o| o == "ro"));
    }

    #[test]
    fn default_spec_keeps_the_sandbox() {
        let spec = build_spec(&op(SecurityMode::Sandbox), Path::new("/r"), &etc()).expect("spec");
        let linux = spec.linux().as_ref().expect("linux");
        assert!(linux.readonly_paths().iter().flatten().next().is_some());
        let process = spec.process().as_ref().expect("process");
        let bounding = process
            .capabilities()
            .as_ref()
            .and_then(|c| c.bounding().clone())
            .expect("bounding");
        assert!(!bounding.contains(&Capability::SysAdmin));
    }
}
