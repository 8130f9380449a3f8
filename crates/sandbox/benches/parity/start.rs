//! The command's start in the parity floor, as runc's init does it for BuildKit's spec (a RUN
//! as root): a new session, the capability set ([`start`]: the bounding set cut to Docker's
//! default, root's user and groups set with the capabilities kept, the sets applied, the ambient
//! set cleared, no_new_privs), the seccomp filter ([`install`]), and `execve` of
//! `/bin/sh -c true` ([`exec`]).

use std::ffi::CStr;

use seccompiler::BpfProgram;

use super::{check, Failed, Step};

/// Docker's (and containerd's, so BuildKit's) default capabilities, by number: CHOWN,
/// DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW,
/// SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
pub const DEFAULT_CAPS: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// `capset(2)`'s header and data (version 3: two 32-bit words per set).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn prctl(option: libc::c_int, arg: libc::c_ulong, what: &'static str) -> Step {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(option, arg, 0, 0, 0) }, what)
}

/// Everything between the pivot and the filter, for root in the run (`last_cap`: the kernel's
/// highest capability).
pub fn start(last_cap: u32) -> Step {
    // SAFETY: setsid and signal with constant arguments. Rust's runtime ignores SIGPIPE, and
    // an ignored signal stays ignored across exec: the command gets the default back.
    unsafe {
        check(if libc::setsid() < 0 { -1 } else { 0 }, "setsid")?;
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let keep: u64 = DEFAULT_CAPS.iter().map(|&c| 1u64 << c).sum();
    for cap in (0..=last_cap).filter(|&c| keep & (1 << c) == 0) {
        prctl(
            libc::PR_CAPBSET_DROP,
            cap.into(),
            "drop from the bounding set",
        )?;
    }
    set_user(keep)?;
    let clear_all = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
    prctl(libc::PR_CAP_AMBIENT, clear_all, "clear the ambient set")?;
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, "no_new_privs")
}

/// Root's groups, gid and uid (runc sets them whoever the user is, keeping the capabilities
/// across), then the permitted and effective sets `keep` and an empty inheritable set.
fn set_user(keep: u64) -> Step {
    prctl(libc::PR_SET_KEEPCAPS, 1, "keep capabilities")?;
    // SAFETY: setgroups with an empty list; setresgid and setresuid with constants.
    unsafe {
        check(libc::setgroups(0, std::ptr::null()), "setgroups")?;
        check(libc::setresgid(0, 0, 0), "setresgid")?;
        check(libc::setresuid(0, 0, 0), "setresuid")?;
    }
    prctl(libc::PR_SET_KEEPCAPS, 0, "clear keep capabilities")?;
    let mut header = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [keep as u32, (keep >> 32) as u32].map(|set| CapData {
        effective: set,
        permitted: set,
        inheritable: 0,
    });
    // SAFETY: capset reads a version-3 header and two data structs that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    check(rc as libc::c_int, "capset")
}

/// Installs the compiled filter's programs in order (no_new_privs is set).
pub fn install(filter: &[BpfProgram]) -> Step {
    for prog in filter {
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            // seccompiler's sock_filter has the kernel's layout.
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        let mode = libc::SECCOMP_MODE_FILTER as libc::c_ulong;
        // SAFETY: the kernel copies the program during the call; `prog` outlives it.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                mode,
                &fprog as *const libc::sock_fprog,
            )
        };
        check(rc, "install the seccomp filter")?;
    }
    Ok(())
}

/// `execve("/bin/sh", ["/bin/sh", "-c", script])` with BuildKit's default PATH and root's HOME;
/// returns only on failure.
pub fn exec(script: &CStr) -> Failed {
    let argv = [
        c"/bin/sh".as_ptr(),
        c"-c".as_ptr(),
        script.as_ptr(),
        std::ptr::null(),
    ];
    let env = [
        c"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".as_ptr(),
        c"HOME=/root".as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: execve with NUL-terminated argv and envp of static strings.
    let rc = unsafe { libc::execve(argv[0], argv.as_ptr(), env.as_ptr()) };
    match check(rc, "execve /bin/sh") {
        Err(failed) => failed,
        Ok(()) => unreachable!("execve returned 0"),
    }
}
