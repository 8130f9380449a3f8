//! Pid 1's mounts in the parity floor, after the overlay, relative to the rootfs (its working
//! directory): the default mounts of BuildKit's spec for a RUN as runc makes them
//! ([`spec_mounts`]), the standard device nodes and links ([`devices`]), the masked and
//! read-only paths ([`masked`], [`readonly`]), and the pivot ([`pivot`]).

use std::ffi::CStr;

use super::{check, Step};

const NOSUID: libc::c_ulong = libc::MS_NOSUID;
const NOEXEC: libc::c_ulong = libc::MS_NOEXEC;
const NODEV: libc::c_ulong = libc::MS_NODEV;

/// BuildKit's masked paths (containerd's default spec, as BuildKit vendors it: `pkg/oci/spec.go`),
/// under the rootfs. Missing ones are skipped, as runc does.
const MASKED: [&CStr; 11] = [
    c"proc/acpi",
    c"proc/asound",
    c"proc/kcore",
    c"proc/keys",
    c"proc/latency_stats",
    c"proc/timer_list",
    c"proc/timer_stats",
    c"proc/sched_debug",
    c"sys/firmware",
    c"sys/devices/virtual/powercap",
    c"proc/scsi",
];

/// BuildKit's read-only paths (the same spec), under the rootfs.
const READONLY: [&CStr; 5] = [
    c"proc/bus",
    c"proc/fs",
    c"proc/irq",
    c"proc/sys",
    c"proc/sysrq-trigger",
];

/// The spec's device nodes (runc's default devices; rbuild's `spec::DEVICES`): name, major,
/// minor; all character devices of mode 0666 owned by root.
const DEVICES: [(&CStr, u32, u32); 6] = [
    (c"dev/null", 1, 3),
    (c"dev/zero", 1, 5),
    (c"dev/full", 1, 7),
    (c"dev/random", 1, 8),
    (c"dev/urandom", 1, 9),
    (c"dev/tty", 5, 0),
];

/// The links runc (and rbuild) make in /dev: link, target.
const LINKS: [(&CStr, &CStr); 6] = [
    (c"dev/fd", c"/proc/self/fd"),
    (c"dev/stdin", c"/proc/self/fd/0"),
    (c"dev/stdout", c"/proc/self/fd/1"),
    (c"dev/stderr", c"/proc/self/fd/2"),
    (c"dev/ptmx", c"pts/ptmx"),
    (c"dev/core", c"/proc/kcore"),
];

fn mount(
    source: &CStr,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
    what: &'static str,
) -> Step {
    // SAFETY: mount(2) with NUL-terminated strings (or nulls) that outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.map_or(std::ptr::null(), CStr::as_ptr),
            flags,
            data.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    check(rc, what)
}

fn mkdir(path: &CStr, mode: libc::mode_t, what: &'static str) -> Step {
    // SAFETY: mkdir of a NUL-terminated path.
    check(unsafe { libc::mkdir(path.as_ptr(), mode) }, what)
}

/// A bind mount made read-only (BuildKit's `withROBind` options: rbind, ro, nosuid, nodev,
/// noexec): the bind, then its remount with the flags.
fn ro_bind(source: &CStr, target: &CStr, what: &'static str) -> Step {
    mount(
        source,
        target,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
        what,
    )?;
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | NOSUID | NODEV | NOEXEC;
    mount(c"", target, None, flags, None, what)
}

/// /proc, /dev (tmpfs), /dev/pts (a new devpts instance), /dev/shm, /dev/mqueue, /sys
/// (read-only sysfs of the joined network namespace), /etc/hosts and /etc/resolv.conf
/// (read-only binds of the build's files `hosts` and `resolv`): BuildKit's list, in its order.
pub fn spec_mounts(hosts: &CStr, resolv: &CStr) -> Step {
    let proc_flags = NOSUID | NOEXEC | NODEV;
    mount(
        c"proc",
        c"proc",
        Some(c"proc"),
        proc_flags,
        None,
        "mount /proc",
    )?;
    let dev_data = c"mode=755,size=65536k";
    let dev_flags = NOSUID | libc::MS_STRICTATIME;
    mount(
        c"tmpfs",
        c"dev",
        Some(c"tmpfs"),
        dev_flags,
        Some(dev_data),
        "mount /dev",
    )?;
    mkdir(c"dev/pts", 0o755, "mkdir /dev/pts")?;
    let pts_data = c"newinstance,ptmxmode=0666,mode=0620,gid=5";
    let pts_flags = NOSUID | NOEXEC;
    mount(
        c"devpts",
        c"dev/pts",
        Some(c"devpts"),
        pts_flags,
        Some(pts_data),
        "mount /dev/pts",
    )?;
    mkdir(c"dev/shm", 0o755, "mkdir /dev/shm")?;
    let shm_data = c"mode=1777,size=65536k";
    let shm_flags = NOSUID | NOEXEC | NODEV;
    mount(
        c"shm",
        c"dev/shm",
        Some(c"tmpfs"),
        shm_flags,
        Some(shm_data),
        "mount /dev/shm",
    )?;
    mkdir(c"dev/mqueue", 0o755, "mkdir /dev/mqueue")?;
    let mq_flags = NOSUID | NOEXEC | NODEV;
    mount(
        c"mqueue",
        c"dev/mqueue",
        Some(c"mqueue"),
        mq_flags,
        None,
        "mount /dev/mqueue",
    )?;
    let sys_flags = libc::MS_RDONLY | NOSUID | NOEXEC | NODEV;
    mount(
        c"sysfs",
        c"sys",
        Some(c"sysfs"),
        sys_flags,
        None,
        "mount /sys",
    )?;
    ro_bind(resolv, c"etc/resolv.conf", "bind /etc/resolv.conf")?;
    ro_bind(hosts, c"etc/hosts", "bind /etc/hosts")
}

/// The device nodes (`mknod` under a zero umask, so no chmod follows) and the /dev links.
pub fn devices() -> Step {
    // SAFETY: umask, mknod and symlink with NUL-terminated paths.
    unsafe {
        let umask = libc::umask(0);
        for (path, major, minor) in DEVICES {
            let mode = libc::S_IFCHR | 0o666;
            let rc = libc::mknod(path.as_ptr(), mode, libc::makedev(major, minor));
            check(rc, "mknod")?;
        }
        libc::umask(umask);
        for (link, target) in LINKS {
            check(
                libc::symlink(target.as_ptr(), link.as_ptr()),
                "symlink in /dev",
            )?;
        }
    }
    Ok(())
}

/// Whether `path` exists, and is a directory (`lstat`).
fn kind(path: &CStr) -> Option<bool> {
    // SAFETY: lstat of a NUL-terminated path into a stat buffer we own.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::lstat(path.as_ptr(), &mut st) == 0)
            .then_some(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
    }
}

/// Each masked path that exists: a directory gets an empty read-only tmpfs, a file /dev/null.
pub fn masked() -> Step {
    for path in MASKED {
        match kind(path) {
            None => continue,
            Some(true) => mount(
                c"tmpfs",
                path,
                Some(c"tmpfs"),
                libc::MS_RDONLY,
                None,
                "mask dir",
            )?,
            Some(false) => mount(c"dev/null", path, None, libc::MS_BIND, None, "mask file")?,
        }
    }
    Ok(())
}

/// Each read-only path that exists: a recursive bind of itself, remounted read-only.
pub fn readonly() -> Step {
    for path in READONLY {
        if kind(path).is_some() {
            ro_bind(path, path, "read-only path")?;
        }
    }
    Ok(())
}

/// `pivot_root(".", ".")` into the rootfs (the working directory), the old root made a slave
/// (so its detach does not propagate) and detached, and `chdir("/")`.
pub fn pivot() -> Step {
    // SAFETY: pivot_root, mount, umount2 and chdir with NUL-terminated paths.
    unsafe {
        let rc = libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr());
        check(rc as libc::c_int, "pivot_root")?;
    }
    mount(
        c"",
        c".",
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
        "old root rslave",
    )?;
    // SAFETY: as above.
    unsafe {
        check(
            libc::umount2(c".".as_ptr(), libc::MNT_DETACH),
            "detach the old root",
        )?;
        check(libc::chdir(c"/".as_ptr()), "chdir /")
    }
}
