//! Docker's default seccomp profile as data (moby/profiles `seccomp/default.json`, the version
//! with `listmount`, `mseal` and `uretprobe` and without `io_uring_*`), for x86_64 and aarch64:
//! an allow list whose default action is EPERM, arg-conditional rules (`socket` unless
//! `AF_VSOCK`, a few `personality` values, `clone` without namespace flags) and rules included
//! or excluded by the capabilities a RUN holds (`CAP_SYS_ADMIN` allows the mount API and
//! namespaces, `CAP_SYS_CHROOT` allows `chroot`, …). [`rules`] picks the rules that apply to a
//! capability set on this architecture; `seccomp` turns them into the OCI `linux.seccomp`
//! section (runc) and the BPF program (built-in executor).
//!
//! One deliberate difference: the kernel keyring calls (`add_key`, `keyctl`, `request_key`)
//! stay refused. Docker allows them since its containers always get a user-namespaced keyring
//! session from runc; a root RUN here shares the host's user namespace, so its keyrings would
//! be root's on the host.
//!
//! Rules for architectures rbuild does not run on (s390, ppc64le, riscv64, mips) are left out;
//! names this architecture lacks (`chown32`, `mmap2`, …) are kept in the OCI section, as in
//! Docker's, and skipped by the BPF compiler.

use oci_spec::runtime::Capability;

/// How a rule's argument is compared (libseccomp's operators, 64-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgCmp {
    /// `arg == value`.
    Eq(u64),
    /// `arg != value`.
    Ne(u64),
    /// `arg & mask == value`.
    MaskedEq { mask: u64, value: u64 },
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Fail with this errno.
    Errno(i32),
}

/// The architectures rules can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture rbuild was built for, if the profile supports it.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }
}

/// One rule of the profile.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub names: &'static [&'static str],
    pub action: Action,
    /// A condition on argument `index`, if any.
    pub arg: Option<(u8, ArgCmp)>,
    /// Applies only when the RUN holds one of these capabilities (empty: always).
    pub with_caps: &'static [Capability],
    /// Applies only when the RUN holds none of these capabilities.
    pub without_caps: &'static [Capability],
    /// Applies only on these architectures (empty: all).
    pub arches: &'static [Arch],
}

const fn allow(names: &'static [&'static str]) -> Rule {
    Rule {
        names,
        action: Action::Allow,
        arg: None,
        with_caps: &[],
        without_caps: &[],
        arches: &[],
    }
}

const fn allow_with(cap: &'static [Capability], names: &'static [&'static str]) -> Rule {
    Rule {
        with_caps: cap,
        ..allow(names)
    }
}

const fn allow_on(arches: &'static [Arch], names: &'static [&'static str]) -> Rule {
    Rule {
        arches,
        ..allow(names)
    }
}

const fn allow_if(name: &'static [&'static str], index: u8, cmp: ArgCmp) -> Rule {
    Rule {
        arg: Some((index, cmp)),
        ..allow(name)
    }
}

/// The namespace flags `clone` may not carry without CAP_SYS_ADMIN: CLONE_NEWNS, NEWCGROUP,
/// NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (0x7e020000, Docker's mask).
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7e02_0000;

/// `AF_VSOCK`, which `socket` may not create.
const AF_VSOCK: u64 = 40;

/// The syscalls every RUN may make.
const BASE: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // `minKernel: 4.8` in Docker's profile (since then ptrace cannot bypass seccomp).
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
];

use Capability as C;

/// Docker's default profile, in its order.
pub const PROFILE: &[Rule] = &[
    allow(BASE),
    allow_if(&["socket"], 0, ArgCmp::Ne(AF_VSOCK)),
    allow_if(&["personality"], 0, ArgCmp::Eq(0)),
    allow_if(&["personality"], 0, ArgCmp::Eq(0x8)),
    allow_if(&["personality"], 0, ArgCmp::Eq(0x20000)),
    allow_if(&["personality"], 0, ArgCmp::Eq(0x20008)),
    allow_if(&["personality"], 0, ArgCmp::Eq(0xffff_ffff)),
    allow_on(
        &[Arch::Aarch64],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    allow_on(&[Arch::X86_64], &["arch_prctl", "modify_ldt"]),
    allow_with(&[C::DacReadSearch], &["open_by_handle_at"]),
    allow_with(
        &[C::SysAdmin],
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    Rule {
        without_caps: &[C::SysAdmin],
        arg: Some((
            0,
            ArgCmp::MaskedEq {
                mask: CLONE_NAMESPACE_FLAGS,
                value: 0,
            },
        )),
        ..allow(&["clone"])
    },
    // clone3's flags sit in a struct the filter cannot read: ENOSYS makes C libraries fall
    // back to clone, whose flags it can.
    Rule {
        without_caps: &[C::SysAdmin],
        action: Action::Errno(libc::ENOSYS),
        ..allow(&["clone3"])
    },
    allow_with(&[C::SysBoot], &["reboot"]),
    allow_with(&[C::SysChroot], &["chroot"]),
    allow_with(
        &[C::SysModule],
        &["delete_module", "init_module", "finit_module"],
    ),
    allow_with(&[C::SysPacct], &["acct"]),
    allow_with(
        &[C::SysPtrace],
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    allow_with(&[C::SysRawio], &["iopl", "ioperm"]),
    allow_with(
        &[C::SysTime],
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    allow_with(&[C::SysTtyConfig], &["vhangup"]),
    allow_with(
        &[C::SysNice],
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    allow_with(&[C::Syslog], &["syslog"]),
    allow_with(&[C::Bpf], &["bpf"]),
    allow_with(&[C::Perfmon], &["perf_event_open"]),
];

/// The rules of [`PROFILE`] that apply to a RUN holding `caps` on `arch`, in order.
pub fn rules(caps: &[Capability], arch: Arch) -> Vec<&'static Rule> {
    PROFILE
        .iter()
        .filter(|r| r.arches.is_empty() || r.arches.contains(&arch))
        .filter(|r| r.with_caps.is_empty() || r.with_caps.iter().any(|c| caps.contains(c)))
        .filter(|r| !r.without_caps.iter().any(|c| caps.contains(c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(caps: &[Capability], name: &str) -> bool {
        rules(caps, Arch::X86_64)
            .iter()
            .any(|r| r.action == Action::Allow && r.arg.is_none() && r.names.contains(&name))
    }

    #[test]
    fn capabilities_select_rules() {
        let default = [C::Chown, C::SysChroot, C::Setuid];
        assert!(allowed(&default, "chroot"));
        assert!(!allowed(&[C::Chown], "chroot"));
        assert!(!allowed(&default, "mount"));
        assert!(allowed(&[C::SysAdmin], "mount"));
        assert!(!allowed(&default, "io_uring_setup"));
        assert!(!allowed(&default, "keyctl"));
        // clone: conditional without CAP_SYS_ADMIN, unconditional with it.
        assert!(!allowed(&default, "clone"));
        assert!(allowed(&[C::SysAdmin], "clone"));
        let clone3 = |caps: &[Capability]| {
            rules(caps, Arch::X86_64)
                .iter()
                .any(|r| r.action == Action::Errno(libc::ENOSYS) && r.names == ["clone3"])
        };
        assert!(clone3(&default));
        assert!(!clone3(&[C::SysAdmin]));
    }

    #[test]
    fn arch_rules_apply_to_their_arch_only() {
        let on = |arch| {
            rules(&[], arch)
                .iter()
                .any(|r| r.names.contains(&"arch_prctl"))
        };
        assert!(on(Arch::X86_64));
        assert!(!on(Arch::Aarch64));
    }
}
