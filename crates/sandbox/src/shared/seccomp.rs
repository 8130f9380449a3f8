//! A seccomp filter for RUN: the syscalls Docker's default profile refuses to processes without
//! extra capabilities, expressed as an OCI `linux.seccomp` section (so runc applies the same
//! rules) and compiled here into a classic BPF program for the built-in executor.
//!
//! It is a deny list on top of "allow" (Docker's profile is an allow list): kernel-module,
//! kexec, keyring, bpf, perf, mount-API, namespace (`unshare`, `setns`, `clone` with
//! `CLONE_NEWUSER`), clock and swap syscalls fail with EPERM; `clone3` fails with ENOSYS so C
//! libraries fall back to `clone`, whose flags can be checked. Syscalls of a foreign
//! architecture (e.g. i386 on x86_64) fail with ENOSYS; on x86_64 the x32 ABI is refused.
//! Supported: x86_64 and aarch64; on other architectures no filter is installed.

use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscallBuilder,
};

use crate::shared::error::{Result, SetupError};

/// Syscalls refused with EPERM.
pub const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
];

/// The kernel's number of `name` on this architecture, if it has it.
fn number(name: &str) -> Option<libc::c_long> {
    #[cfg(target_arch = "x86_64")]
    let arch_specific: &[(&str, libc::c_long)] = &[
        ("ioperm", libc::SYS_ioperm),
        ("iopl", libc::SYS_iopl),
        ("sysfs", libc::SYS_sysfs),
        ("_sysctl", libc::SYS__sysctl),
        ("uselib", libc::SYS_uselib),
        ("ustat", libc::SYS_ustat),
    ];
    #[cfg(not(target_arch = "x86_64"))]
    let arch_specific: &[(&str, libc::c_long)] = &[];
    let common: &[(&str, libc::c_long)] = &[
        ("acct", libc::SYS_acct),
        ("add_key", libc::SYS_add_key),
        ("bpf", libc::SYS_bpf),
        ("clock_adjtime", libc::SYS_clock_adjtime),
        ("clock_settime", libc::SYS_clock_settime),
        ("clone", libc::SYS_clone),
        ("clone3", libc::SYS_clone3),
        ("delete_module", libc::SYS_delete_module),
        ("finit_module", libc::SYS_finit_module),
        ("fsconfig", libc::SYS_fsconfig),
        ("fsmount", libc::SYS_fsmount),
        ("fsopen", libc::SYS_fsopen),
        ("fspick", libc::SYS_fspick),
        ("get_mempolicy", libc::SYS_get_mempolicy),
        ("init_module", libc::SYS_init_module),
        ("kcmp", libc::SYS_kcmp),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("kexec_load", libc::SYS_kexec_load),
        ("keyctl", libc::SYS_keyctl),
        ("lookup_dcookie", libc::SYS_lookup_dcookie),
        ("mbind", libc::SYS_mbind),
        ("mount", libc::SYS_mount),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("move_mount", libc::SYS_move_mount),
        ("move_pages", libc::SYS_move_pages),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("nfsservctl", libc::SYS_nfsservctl),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("open_tree", libc::SYS_open_tree),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("pivot_root", libc::SYS_pivot_root),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("quotactl", libc::SYS_quotactl),
        ("reboot", libc::SYS_reboot),
        ("request_key", libc::SYS_request_key),
        ("set_mempolicy", libc::SYS_set_mempolicy),
        ("setns", libc::SYS_setns),
        ("settimeofday", libc::SYS_settimeofday),
        ("swapoff", libc::SYS_swapoff),
        ("swapon", libc::SYS_swapon),
        ("umount2", libc::SYS_umount2),
        ("unshare", libc::SYS_unshare),
        ("userfaultfd", libc::SYS_userfaultfd),
    ];
    common
        .iter()
        .chain(arch_specific)
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
}

/// The audit architecture of this build, if the filter supports it.
fn native_arch() -> Option<(Arch, u32)> {
    if cfg!(target_arch = "x86_64") {
        Some((Arch::ScmpArchX86_64, 0xc000_003e))
    } else if cfg!(target_arch = "aarch64") {
        Some((Arch::ScmpArchAarch64, 0xc000_00b7))
    } else {
        None
    }
}

/// The `linux.seccomp` section of a RUN's spec (None on unsupported architectures).
pub fn spec_section() -> Result<Option<LinuxSeccomp>> {
    let Some((arch, _)) = native_arch() else {
        return Ok(None);
    };
    let deny = LinuxSyscallBuilder::default()
        .names(DENIED.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .build()?;
    let clone3 = LinuxSyscallBuilder::default()
        .names(vec!["clone3".to_string()])
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::ENOSYS as u32)
        .build()?;
    let newuser = libc::CLONE_NEWUSER as u64;
    let clone_userns = LinuxSyscallBuilder::default()
        .names(vec!["clone".to_string()])
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .args(vec![LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(newuser)
            .value_two(newuser)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()?])
        .build()?;
    Ok(Some(
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .architectures(vec![arch])
            .syscalls(vec![deny, clone3, clone_userns])
            .build()?,
    ))
}

// Classic BPF opcodes (linux/bpf_common.h) and seccomp return values (linux/seccomp.h).
// BPF_LD (0x00) | BPF_W (0x00) | BPF_ABS (0x20).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_RET_K: u16 = 0x06;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Why a seccomp section cannot be compiled by the built-in filter.
fn unsupported(what: String) -> SetupError {
    SetupError::Seccomp { what }
}

fn action_value(action: LinuxSeccompAction, errno: Option<u32>) -> Result<u32> {
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActErrno => {
            RET_ERRNO | (errno.unwrap_or(libc::EPERM as u32) & 0xffff)
        }
        LinuxSeccompAction::ScmpActKillProcess => 0x8000_0000,
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => 0,
        LinuxSeccompAction::ScmpActTrap => 0x0003_0000,
        LinuxSeccompAction::ScmpActLog => 0x7ffc_0000,
        other => return Err(unsupported(format!("action {other:?}"))),
    })
}

/// Compiles `section` into a BPF program. Supports rules without arguments, and rules with one
/// `SCMP_CMP_MASKED_EQ` test on the low 32 bits of an argument.
pub fn compile(section: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>> {
    let Some((_, audit_arch)) = native_arch() else {
        return Err(unsupported("this architecture".into()));
    };
    let default = action_value(section.default_action(), section.default_errno_ret())?;
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JMP_JEQ_K, audit_arch, 1, 0),
        stmt(BPF_RET_K, RET_ERRNO | libc::ENOSYS as u32),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    if cfg!(target_arch = "x86_64") {
        prog.push(jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1));
        prog.push(stmt(BPF_RET_K, RET_ERRNO | libc::EPERM as u32));
    }
    for rule in section.syscalls().iter().flatten() {
        let ret = action_value(rule.action(), rule.errno_ret())?;
        let args = rule.args().as_deref().unwrap_or(&[]);
        for name in rule.names() {
            let Some(nr) = number(name) else {
                continue;
            };
            match args {
                [] => {
                    prog.push(jump(BPF_JMP_JEQ_K, nr as u32, 0, 1));
                    prog.push(stmt(BPF_RET_K, ret));
                }
                [arg]
                    if arg.op() == LinuxSeccompOperator::ScmpCmpMaskedEq
                        && arg.index() < 6
                        && arg.value() <= u32::MAX as u64
                        && arg.value_two().unwrap_or(0) <= u32::MAX as u64 =>
                {
                    prog.push(jump(BPF_JMP_JEQ_K, nr as u32, 0, 4));
                    prog.push(stmt(BPF_LD_W_ABS, OFF_ARGS + 8 * arg.index() as u32));
                    prog.push(stmt(BPF_ALU_AND_K, arg.value() as u32));
                    prog.push(jump(
                        BPF_JMP_JEQ_K,
                        arg.value_two().unwrap_or(0) as u32,
                        0,
                        1,
                    ));
                    prog.push(stmt(BPF_RET_K, ret));
                    prog.push(stmt(BPF_LD_W_ABS, OFF_NR));
                }
                _ => return Err(unsupported(format!("argument conditions of {name}"))),
            }
        }
    }
    prog.push(stmt(BPF_RET_K, default));
    Ok(prog)
}

/// Installs `prog` on the calling thread. Needs no_new_privs (or CAP_SYS_ADMIN).
pub fn install(prog: &[libc::sock_filter]) -> Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // libc: nix has no seccomp.
    // SAFETY: the kernel copies the program during the call; `prog` outlives it.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(SetupError::sys("install seccomp filter", Errno::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denied_name_is_known_or_arch_specific() {
        let known = DENIED.iter().filter(|n| number(n).is_some()).count();
        assert!(
            known >= 40,
            "only {known} denied syscalls have numbers here"
        );
    }

    #[test]
    fn section_compiles_to_a_short_program() {
        let Some(section) = spec_section().expect("section") else {
            return;
        };
        let prog = compile(&section).expect("compile");
        assert!(prog.len() < 200, "{}", prog.len());
        assert_eq!(prog.last().map(|i| i.k), Some(RET_ALLOW));
    }
}
