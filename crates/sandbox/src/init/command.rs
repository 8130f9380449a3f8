//! The command's process, forked by pid 1 after the pivot: its program looked up in its own
//! `PATH` ([`find_program`]), its environment ([`env_for`]: HOME from passwd when unset), then
//! a new session, default signal dispositions, rlimits, capabilities, user and groups,
//! no_new_privs, cwd and seccomp, and `execve` ([`exec_command`]).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::prctl::set_no_new_privs;
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{setgid, setsid, setuid, Gid, Uid};
use oci_spec::runtime::{LinuxSeccomp, Process};

use crate::init::rootless;
use crate::init::user::ExecUser;
use crate::shared::caps;
use crate::shared::error::{Result, SetupError};
use crate::shared::runtime_spec::DEFAULT_PATH;
use crate::shared::seccomp;
use crate::shared::trace;

/// The process env plus HOME from passwd when unset (as Docker does).
pub(crate) fn env_for(process: &Process, user: &ExecUser) -> Vec<String> {
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|kv| kv.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    env
}

/// Looks `argv[0]` up in the command's own PATH (not the init's), inside the new root.
pub(crate) fn find_program(argv: &[&[u8]], env: &[String]) -> Result<PathBuf> {
    let Some(&arg0) = argv.first() else {
        return Err(SetupError::SpecField {
            field: "process.args",
        });
    };
    let arg0 = std::ffi::OsStr::from_bytes(arg0);
    if arg0.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(SetupError::Exec {
        program: arg0.to_string_lossy().into_owned(),
        reason: "executable file not found in $PATH".into(),
    })
}

fn cstring(s: &[u8], what: &'static str) -> Result<CString> {
    CString::new(s).map_err(|_| SetupError::Exec {
        program: String::from_utf8_lossy(s).into_owned(),
        reason: format!("{what} contains a NUL byte"),
    })
}

/// What the command's process execs, all resolved by pid 1 before the fork.
pub(crate) struct Command<'a> {
    pub process: &'a Process,
    pub argv: &'a [&'a [u8]],
    pub seccomp: Option<&'a LinuxSeccomp>,
    pub user: &'a ExecUser,
    pub cwd: &'a Path,
    /// `argv[0]` found in the command's PATH ([`find_program`]).
    pub program: &'a Path,
    /// Its environment ([`env_for`]).
    pub env: &'a [String],
}

/// In the command's process: rlimits, capabilities, user, no_new_privs, cwd, seccomp, exec. Returns
/// only on failure.
pub(crate) fn exec_command(cmd: &Command<'_>) -> SetupError {
    match prepare_and_exec(cmd) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn prepare_and_exec(cmd: &Command<'_>) -> Result<std::convert::Infallible> {
    let Command {
        process,
        argv,
        seccomp,
        user,
        cwd,
        program,
        env,
    } = *cmd;
    setsid().map_err(|e| SetupError::sys("setsid", e))?;
    reset_signals()?;
    for rl in process.rlimits().iter().flatten() {
        setrlimit(rlimit_resource(rl.typ()), rl.soft(), rl.hard())
            .map_err(|e| SetupError::sys("setrlimit", e))?;
    }
    let caps_spec = process.capabilities().clone().unwrap_or_default();
    caps::drop_bounding(&caps_spec)?;
    let groups: Vec<Gid> = user
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    rootless::set_groups(&groups)?;
    setgid(Gid::from_raw(user.gid)).map_err(|e| SetupError::sys("setgid", e))?;
    setuid(Uid::from_raw(user.uid)).map_err(|e| SetupError::sys("setuid", e))?;
    if user.uid == 0 {
        caps::apply_sets(&caps_spec)?;
    }
    if process.no_new_privileges().unwrap_or(true) {
        set_no_new_privs().map_err(|e| SetupError::sys("set no_new_privs", e))?;
    }
    std::env::set_current_dir(cwd).map_err(|e| SetupError::io("chdir", cwd, e))?;
    // Compiled before installing: nothing allocates between the filter and execve.
    let filter = match seccomp {
        Some(section) => Some(seccomp::compile(section)?),
        None => None,
    };
    let c_args = argv
        .iter()
        .map(|a| cstring(a, "argument"))
        .collect::<Result<Vec<_>>>()?;
    let c_env = env
        .iter()
        .map(|e| cstring(e.as_bytes(), "environment variable"))
        .collect::<Result<Vec<_>>>()?;
    let c_prog = cstring(program.as_os_str().as_bytes(), "program path")?;
    trace::mark("command: exec");
    if let Some(filter) = &filter {
        seccomp::install(filter)?;
        trace::mark("command: filter installed");
    }
    let err = match nix::unistd::execve(&c_prog, &c_args, &c_env) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    Err(SetupError::Exec {
        program: program.display().to_string(),
        reason: err.desc().to_string(),
    })
}

/// Gives the command default signal dispositions and an empty signal mask: the Rust runtime
/// of the init ignores SIGPIPE, whoever started rbuild may have ignored others, and an ignored
/// signal stays ignored across exec. Real-time signals included.
fn reset_signals() -> Result<()> {
    // An all-zero kernel `struct sigaction` is SIG_DFL with no flags and an empty mask, whatever
    // the architecture's field layout; the raw syscall also reaches the signals libc reserves.
    let act = [0u64; 4];
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // libc: nix's sigaction goes through libc, which refuses the signals it reserves.
        // SAFETY: rt_sigaction reads `act` (large enough for the kernel struct) and writes
        // nothing (null old action); sigsetsize is the kernel's 8 bytes.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                act.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        if rc != 0 {
            return Err(SetupError::sys("reset signal disposition", Errno::last()));
        }
    }
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )
    .map_err(|e| SetupError::sys("clear signal mask", e))
}

fn rlimit_resource(typ: oci_spec::runtime::PosixRlimitType) -> Resource {
    use oci_spec::runtime::PosixRlimitType as T;
    match typ {
        T::RlimitCpu => Resource::RLIMIT_CPU,
        T::RlimitFsize => Resource::RLIMIT_FSIZE,
        T::RlimitData => Resource::RLIMIT_DATA,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        T::RlimitRss => Resource::RLIMIT_RSS,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitAs => Resource::RLIMIT_AS,
        T::RlimitLocks => Resource::RLIMIT_LOCKS,
        T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        T::RlimitNice => Resource::RLIMIT_NICE,
        T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        T::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}
