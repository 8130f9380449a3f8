//! Building the OCI runtime spec of one RUN: process (args, env, cwd), Docker's default
//! capabilities, namespaces, mounts (/proc, a minimal /dev, read-only /sys, generated read-only
//! /etc/hosts and /etc/resolv.conf as BuildKit binds them), devices, masked and read-only paths as in
//! runc's default spec, and rlimits and the /dev/shm size from the build's flags (`launch::meta`).
//!
//! The same spec drives the built-in init (`init::pid1`) and an external runtime
//! ([`RuncExecutor`](crate::launch::runc::RuncExecutor)).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceBuilder,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};
use rbuild_graph::{ExecOp, NetworkMode, SecurityMode};

use crate::launch::{insecure, meta};

/// The hostname every RUN sees (defined beside the /etc/hosts it goes into).
pub use crate::launch::meta::HOSTNAME;
use crate::shared::caps::DOCKER_DEFAULT_CAPS;
use crate::shared::error::Result;
use crate::shared::seccomp;

pub use crate::shared::runtime_spec::DEFAULT_PATH;

/// Paths hidden from the command (as in runc's and Docker's default spec).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the command may read but not write.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The character devices of the minimal /dev: (path, major, minor).
pub const DEVICES: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Host files bind-mounted into the sandbox; generated per run, never part of the layer.
#[derive(Debug, Clone)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

/// The argv as the spec's text: exact when every argument is UTF-8; otherwise each stray byte
/// shows as U+FFFD and the bytes travel beside the spec ([`raw_argv`]).
fn spec_args(op: &ExecOp) -> Vec<String> {
    op.args.iter().map(|a| a.lossy().into_owned()).collect()
}

/// The argv's exact bytes when an argument is not UTF-8 (see `InitConfig::argv`).
pub fn raw_argv(op: &ExecOp) -> Option<Vec<rbuild_types::ByteString>> {
    (!op.args.iter().all(|a| a.is_utf8())).then(|| op.args.clone())
}

/// Builds the runtime spec of `op` with its root at `rootfs`. `process.user` is root here;
/// the init (or the runc adapter) replaces it after resolving `op.user` against the rootfs.
pub fn build_spec(op: &ExecOp, rootfs: &Path, etc: &EtcFiles) -> Result<Spec> {
    let caps: Vec<Capability> = DOCKER_DEFAULT_CAPS.iter().map(|(cap, _)| *cap).collect();
    let caps_set: oci_spec::runtime::Capabilities = caps.iter().copied().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps_set.clone())
        .effective(caps_set.clone())
        .permitted(caps_set)
        .build()?;

    let rlimits = meta::rlimits(&op.meta)?;

    let process = ProcessBuilder::default()
        .terminal(false)
        .args(spec_args(op))
        .env(env_with_path(&op.env))
        .cwd(op.cwd.clone())
        .user(UserBuilder::default().uid(0u32).gid(0u32).build()?)
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(true)
        .build()?;

    let mut namespaces = Vec::new();
    let mut kinds = vec![
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
    ];
    if op.network != NetworkMode::Host {
        kinds.push(LinuxNamespaceType::Network);
    }
    for typ in kinds {
        namespaces.push(LinuxNamespaceBuilder::default().typ(typ).build()?);
    }

    let mut devices = Vec::new();
    for (path, major, minor) in DEVICES {
        devices.push(
            LinuxDeviceBuilder::default()
                .path(*path)
                .typ(LinuxDeviceType::C)
                .major(*major)
                .minor(*minor)
                .file_mode(0o666u32)
                .uid(0u32)
                .gid(0u32)
                .build()?,
        );
    }

    // Device cgroup (used by external runtimes): deny all, allow the devices above and ptys.
    let mut rules = vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?];
    for (_, major, minor) in DEVICES {
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(*major)
                .minor(*minor)
                .access("rwm")
                .build()?,
        );
    }
    for (major, minor) in [(5, Some(2)), (136, None)] {
        let mut rule = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(major)
            .access("rwm");
        if let Some(minor) = minor {
            rule = rule.minor(minor);
        }
        rules.push(rule.build()?);
    }
    let resources = LinuxResourcesBuilder::default().devices(rules).build()?;

    let mut linux = LinuxBuilder::default();
    if let Some(seccomp) = seccomp::spec_section(&caps)? {
        linux = linux.seccomp(seccomp);
    }
    let linux = linux
        .resources(resources)
        .namespaces(namespaces)
        .devices(devices)
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        )
        .build()?;

    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(rootfs)
                .readonly(false)
                .build()?,
        )
        .hostname(meta::HOSTNAME)
        .process(process)
        .mounts(mounts(op.network, &meta::shm_size_option(&op.meta), etc)?)
        .linux(linux)
        .build()?;
    if op.security == SecurityMode::Insecure {
        insecure::apply(&mut spec)?;
    }
    Ok(spec)
}

/// The mounts of a RUN, in mount order.
fn mounts(network: NetworkMode, shm_size: &str, etc: &EtcFiles) -> Result<Vec<Mount>> {
    let m = |dest: &str, typ: &str, source: &Path, options: &[&str]| -> Result<Mount> {
        Ok(MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()?)
    };
    let sys = if network == NetworkMode::Host {
        // sysfs cannot be mounted without a network namespace of our own: bind the host's.
        m(
            "/sys",
            "bind",
            Path::new("/sys"),
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        )?
    } else {
        m(
            "/sys",
            "sysfs",
            Path::new("sysfs"),
            &["nosuid", "noexec", "nodev", "ro"],
        )?
    };
    Ok(vec![
        m(
            "/proc",
            "proc",
            Path::new("proc"),
            &["nosuid", "noexec", "nodev"],
        )?,
        m(
            "/dev",
            "tmpfs",
            Path::new("tmpfs"),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        m(
            "/dev/pts",
            "devpts",
            Path::new("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        m(
            "/dev/shm",
            "tmpfs",
            Path::new("shm"),
            &["nosuid", "noexec", "nodev", "mode=1777", shm_size],
        )?,
        m(
            "/dev/mqueue",
            "mqueue",
            Path::new("mqueue"),
            &["nosuid", "noexec", "nodev"],
        )?,
        sys,
        // Read-only, and no /etc/hostname: as BuildKit mounts them (executor/oci, withROBind).
        m(
            "/etc/hosts",
            "bind",
            &etc.hosts,
            &["rbind", "rprivate", "ro"],
        )?,
        m(
            "/etc/resolv.conf",
            "bind",
            &etc.resolv_conf,
            &["rbind", "rprivate", "ro"],
        )?,
    ])
}

/// `env` with Docker's default PATH appended when it has none.
pub fn env_with_path(env: &[String]) -> Vec<String> {
    let mut out = env.to_vec();
    if !out.iter().any(|kv| kv.starts_with("PATH=")) {
        out.push(format!("PATH={DEFAULT_PATH}"));
    }
    out
}

/// /etc/resolv.conf for the sandbox: the host's, without loopback nameservers unless the RUN
/// shares the host's network; Google's public resolvers when nothing is left (as Docker does).
pub fn resolv_conf(host: &str, network: NetworkMode) -> String {
    let mut out = String::new();
    let mut nameservers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let addr = words.next().unwrap_or("");
            let loopback = addr.starts_with("127.") || addr == "::1";
            if loopback && network != NetworkMode::Host {
                continue;
            }
            nameservers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if nameservers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// What the spec tests of this module and of `insecure` build a spec from.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// `sh -c true` with one variable, as root in `/`.
    pub(crate) fn op(network: NetworkMode, security: SecurityMode) -> ExecOp {
        ExecOp {
            platform: rbuild_types::Platform::host(),
            args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            env: vec!["A=1".into()],
            cwd: "/".into(),
            user: String::new(),
            network,
            mounts: vec![],
            security,
            proxy_env: Default::default(),
            meta: Default::default(),
        }
    }

    pub(crate) fn etc() -> EtcFiles {
        EtcFiles {
            hosts: "/x/hosts".into(),
            resolv_conf: "/x/resolv.conf".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use fixtures::etc;

    fn op(network: NetworkMode) -> ExecOp {
        fixtures::op(network, SecurityMode::Sandbox)
    }

    #[test]
    fn spec_has_default_path_caps_and_namespaces() {
        let spec = build_spec(&op(NetworkMode::None), Path::new("/r"), &etc()).expect("spec");
        let process = spec.process().as_ref().expect("process");
        let env = process.env().as_ref().expect("env");
        assert!(env.contains(&format!("PATH={DEFAULT_PATH}")));
        let caps = process.capabilities().as_ref().expect("caps");
        let bounding = caps.bounding().as_ref().expect("bounding");
        assert_eq!(bounding.len(), 14);
        assert!(!bounding.contains(&Capability::SysAdmin));
        let ns = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .expect("ns");
        assert!(ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    }

    #[test]
    fn host_network_shares_netns_and_binds_sys() {
        let spec = build_spec(&op(NetworkMode::Host), Path::new("/r"), &etc()).expect("spec");
        let ns = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .expect("ns");
        assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        let mounts = spec.mounts().as_ref().expect("mounts");
        let sys = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/sys"))
            .expect("sys");
        assert_eq!(sys.typ().as_deref(), Some("bind"));
    }

    #[test]
    fn path_is_kept_when_set() {
        let env = env_with_path(&["PATH=/x".to_string()]);
        assert_eq!(env, vec!["PATH=/x".to_string()]);
    }

    #[test]
    fn resolv_conf_drops_loopback_servers() {
        let host = "search example\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n";
        assert_eq!(
            resolv_conf(host, NetworkMode::None),
            "search example\nnameserver 10.0.0.1\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n", NetworkMode::Default),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n", NetworkMode::Host),
            "nameserver 127.0.0.1\n"
        );
    }
}
