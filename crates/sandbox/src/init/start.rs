//! The init side of the built-in executor.
//!
//! Normally the zygote clones the init as pid 1 of new pid and mount namespaces, already in
//! the spec's other namespaces ([`pid1_process`]). Started any other way ([`init_main`]: by
//! hand, or forked plainly for the runtime adapter), stage 0 reads the [`InitConfig`],
//! unshares the namespaces of the spec and forks pid 1 (or hands the spec to the OCI runtime).
//! Pid 1 mounts the overlay root and the spec's mounts, reports the placeholders it created,
//! pivots into the rootfs, resolves the user, and forks the command, which drops to the spec's
//! capabilities, sets no_new_privs and execs. Pid 1 reaps every zombie until the command
//! exits, kills and reaps whatever the command left behind, and only then reports how the
//! command ended: after that line nothing in the sandbox runs, so rbuild takes the upper dir
//! as the layer without waiting for the namespaces' teardown (stage 0 and pid 1 let go of
//! rbuild's pipes first). Every process dies with its parent (`PR_SET_PDEATHSIG`), so nothing
//! outlives rbuild.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, setgid, setsid, setuid, ForkResult, Gid, Pid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccomp, Process};

use crate::init::mounts::{self, PlaceholderTracker};
use crate::init::user::{self, ExecUser};
use crate::launch::spec::{need, DEFAULT_PATH};
use crate::shared::caps;
use crate::shared::error::{Result, SetupError};
use crate::shared::protocol::{InitConfig, Status};

/// Where status lines go: the status pipe, or stderr when the init was started by hand.
pub(crate) struct StatusWriter(File);

impl StatusWriter {
    /// The status channel is the socket rbuild gave as stdin (duplicated close-on-exec, so
    /// that stdin can become /dev/null and the command never inherits it); when stdin is no
    /// socket (the init was started by hand), status lines go to stderr.
    fn open() -> StatusWriter {
        // SAFETY: fstat writes into the zeroed struct; dup-ing fd 0 or 2 gives a descriptor
        // we own.
        let from = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            let socket =
                libc::fstat(0, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK;
            if socket {
                0
            } else {
                2
            }
        };
        // SAFETY: F_DUPFD_CLOEXEC duplicates an open descriptor into a new one we own.
        let fd = unsafe { libc::fcntl(from, libc::F_DUPFD_CLOEXEC, 3) };
        if fd < 0 {
            std::process::exit(125);
        }
        // SAFETY: `fd` is open and owned by this writer from here on.
        StatusWriter(unsafe { File::from_raw_fd(fd) })
    }

    pub(crate) fn send(&mut self, status: &Status) {
        if let Ok(mut line) = serde_json::to_string(status) {
            line.push('\n');
            // Nobody to tell if the status pipe is gone: rbuild then reports a dead init.
            let _ = self.0.write_all(line.as_bytes());
        }
    }
}

/// Entry point of the re-executed init (`argv[1]` == [`crate::INIT_ARG`]). Never returns.
pub fn init_main() -> ! {
    if std::env::args_os()
        .nth(2)
        .is_some_and(|a| a == crate::launch::zygote::ZYGOTE_ARG)
    {
        crate::init::zygote::serve();
    }
    init_process()
}

/// The init of one run (started by hand, or forked by the zygote). Never returns.
pub(crate) fn init_process() -> ! {
    let mut status = StatusWriter::open();
    match stage0(&mut status) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            status.send(&Status::SetupFailed(err.to_string()));
            std::process::exit(125)
        }
    }
}

/// Reads the config line from stdin (stdin stays open for the network go-ahead).
fn read_config() -> Result<InitConfig> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| SetupError::io("read sandbox config from", "stdin", e))?;
    crate::shared::trace::mark("init: config received");
    serde_json::from_str(&line).map_err(|source| SetupError::Protocol {
        what: "decode sandbox config",
        source,
    })
}

/// Waits for rbuild's go-ahead line once it has set up the network of the new namespace.
fn wait_for_network() -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| SetupError::io("read network go-ahead from", "stdin", e))?;
    if line.trim_end() != crate::shared::protocol::NETWORK_GO {
        return Err(SetupError::NetworkNotReady);
    }
    Ok(())
}

/// Points stdin at /dev/null: the command reads nothing.
fn stdin_from_null() -> Result<()> {
    let null = File::open("/dev/null").map_err(|e| SetupError::io("open", "/dev/null", e))?;
    nix::unistd::dup2(null.as_raw_fd(), 0).map_err(|e| SetupError::sys("dup2 /dev/null", e))?;
    Ok(())
}

/// Points stdout and stderr at /dev/null, so that this process no longer holds rbuild's output
/// pipes open: rbuild sees their end as soon as the command and pid 1 are done, without
/// waiting for this process to exit (and pay the namespaces' teardown).
pub(crate) fn release_output() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 2);
    }
}

impl StatusWriter {
    /// Closes the status pipe (points the writer at /dev/null): for a process that has nothing
    /// more to report, so that it does not hold the pipe open.
    pub(crate) fn release(&mut self) {
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2(null.as_raw_fd(), self.0.as_raw_fd());
        }
    }
}

/// The init forks and then allocates and reads files: only safe in a single-threaded process,
/// so `init_main` must run before the program starts any thread (e.g. an async runtime).
fn single_threaded() -> Result<()> {
    let tasks = std::fs::read_dir("/proc/self/task")
        .map_err(|e| SetupError::io("list threads in", "/proc/self/task", e))?
        .count();
    if tasks > 1 {
        return Err(SetupError::Threaded { threads: tasks });
    }
    Ok(())
}

pub(crate) fn set_pdeathsig() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
        return Err(SetupError::sys("set parent death signal", Errno::last()));
    }
    Ok(())
}

fn stage0(status: &mut StatusWriter) -> Result<i32> {
    crate::shared::trace::mark("init: start");
    set_pdeathsig()?;
    single_threaded()?;
    crate::shared::trace::mark("init: checked");
    let cfg = read_config()?;
    crate::shared::trace::mark("init: config read");
    if let Some(runtime) = &cfg.runtime {
        return crate::launch::runc::runtime_stage(&cfg, runtime, status);
    }
    let linux = need(cfg.spec.linux().as_ref(), "linux")?;
    enter_namespaces(&cfg, status, namespace_flags(linux))?;
    // SAFETY: this process is single-threaded (a fresh exec that started no threads).
    match unsafe { fork() }.map_err(|e| SetupError::sys("fork sandbox pid 1", e))? {
        ForkResult::Child => {
            let code = match pid1(&cfg, status) {
                Ok(()) => 0,
                Err(err) => {
                    status.send(&Status::SetupFailed(err.to_string()));
                    125
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            // Pid 1 reports everything from here on; see `release_output`.
            status.release();
            release_output();
            wait_exit_code(child)
        }
    }
}

/// The clone flags of the namespaces `linux` asks for.
pub(crate) fn namespace_flags(linux: &oci_spec::runtime::Linux) -> CloneFlags {
    let mut flags = CloneFlags::empty();
    for ns in linux.namespaces().iter().flatten() {
        flags |= match ns.typ() {
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
            LinuxNamespaceType::Time => CloneFlags::empty(),
        };
    }
    flags
}

/// Unshares `flags`, lets rbuild attach the user-mode network if the config asks for it, and
/// points stdin at /dev/null.
fn enter_namespaces(cfg: &InitConfig, status: &mut StatusWriter, flags: CloneFlags) -> Result<()> {
    if !flags.is_empty() {
        unshare(flags).map_err(|e| SetupError::sys("unshare namespaces", e))?;
    }
    crate::shared::trace::mark("init: unshared");
    if cfg.slirp {
        status.send(&Status::NetnsReady);
        wait_for_network()?;
    }
    stdin_from_null()
}

/// The init of one run forked by the zygote as pid 1 of a new pid namespace, already in a new
/// mount namespace and in the namespaces of `entered`: it unshares the rest the spec asks for
/// and is the sandbox's pid 1 itself (no stage 0). Never returns.
pub(crate) fn pid1_process(entered: CloneFlags) -> ! {
    let mut status = StatusWriter::open();
    let result = read_config().and_then(|cfg| {
        crate::shared::trace::mark("init: config read");
        let linux = need(cfg.spec.linux().as_ref(), "linux")?;
        let rest = namespace_flags(linux) - entered - CloneFlags::CLONE_NEWPID;
        enter_namespaces(&cfg, &mut status, rest)?;
        pid1(&cfg, &mut status)
    });
    match result {
        Ok(()) => std::process::exit(0),
        Err(err) => {
            status.send(&Status::SetupFailed(err.to_string()));
            std::process::exit(125)
        }
    }
}

/// Waits for `child` and returns its exit code (128 + the signal when killed).
fn wait_exit_code(child: Pid) -> Result<i32> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(SetupError::sys("wait for sandbox pid 1", e)),
        }
    }
}

/// Pid 1 of the sandbox: sets up the root, runs the command, reaps, reports.
fn pid1(cfg: &InitConfig, status: &mut StatusWriter) -> Result<()> {
    crate::shared::trace::mark("pid1: start");
    set_pdeathsig()?;
    let spec = &cfg.spec;
    let linux = need(spec.linux().as_ref(), "linux")?;
    let rootfs = need(spec.root().as_ref(), "root")?.path().clone();
    let process = need(spec.process().as_ref(), "process")?;

    mounts::make_private()?;
    if let Some(hostname) = spec.hostname() {
        nix::unistd::sethostname(hostname).map_err(|e| SetupError::sys("sethostname", e))?;
    }
    if cfg.loopback {
        crate::init::loopback::loopback_up()?;
    }
    mount_root(cfg, &rootfs)?;
    crate::shared::trace::mark("pid1: root mounted");

    let mut tracker = PlaceholderTracker::new(&rootfs, &cfg.upper_abs);
    for m in spec.mounts().iter().flatten() {
        mounts::mount_one(m, &mut tracker)?;
    }
    crate::shared::trace::mark("pid1: spec mounts");
    let run_mounts = crate::init::run_mounts::prepare(&cfg.scratch, &cfg.run_mounts)?;
    crate::init::run_mounts::mount_all(&run_mounts, &mut tracker)?;
    crate::shared::trace::mark("pid1: run mounts");
    mounts::create_devices(&rootfs, linux.devices().as_deref().unwrap_or(&[]))?;
    mounts::dev_symlinks(&rootfs)?;
    crate::shared::trace::mark("pid1: devices");
    mounts::mask_paths(&rootfs, linux.masked_paths().as_deref().unwrap_or(&[]))?;
    crate::shared::trace::mark("pid1: masked");
    mounts::readonly_paths(&rootfs, linux.readonly_paths().as_deref().unwrap_or(&[]))?;
    crate::shared::trace::mark("pid1: readonly");
    for (path, stamp) in tracker.placeholders() {
        status.send(&Status::Placeholder { path, stamp });
    }
    mounts::pivot_into(&rootfs)?;
    crate::shared::trace::mark("pid1: pivoted");

    let user = resolve_user(&cfg.user)?;
    let cwd = PathBuf::from(process.cwd());
    std::fs::create_dir_all(&cwd)
        .map_err(|e| SetupError::io("create working directory", &cwd, e))?;
    let env = env_for(process, &user);
    let argv = cfg.command();
    let program = find_program(&argv, &env)?;
    crate::shared::trace::mark("pid1: fork command");

    // SAFETY: pid 1 is single-threaded.
    match unsafe { fork() }.map_err(|e| SetupError::sys("fork command", e))? {
        ForkResult::Child => {
            let err = exec_command(
                process,
                &argv,
                linux.seccomp().as_ref(),
                &user,
                &cwd,
                &program,
                &env,
            );
            status.send(&Status::SetupFailed(err.to_string()));
            std::process::exit(127)
        }
        ForkResult::Parent { child } => {
            crate::shared::trace::mark("pid1: waiting");
            let end = reap_until(child)?;
            crate::shared::trace::mark("pid1: command exited");
            // The final status promises that nothing in the sandbox runs any more (rbuild then
            // takes the upper dir as the layer): kill and reap what the command left behind.
            kill_all_and_reap()?;
            release_output();
            status.send(&end);
            crate::shared::trace::mark("pid1: reported");
            Ok(())
        }
    }
}

/// Mounts the root at `rootfs`: the overlay, or a bind mount of the copied root.
pub(crate) fn mount_root(cfg: &InitConfig, rootfs: &Path) -> Result<()> {
    let Some(copy) = &cfg.rootfs_bind else {
        return crate::init::root::mount(cfg, rootfs);
    };
    mount(
        Some(copy.as_path()),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| SetupError::Mount {
        what: format!("bind {}", copy.display()),
        target: rootfs.to_path_buf(),
        source,
    })
}

/// `,redirect_dir=off,metacopy=off,index=off` for the parameters this kernel's overlayfs
/// knows: layers stay in the plain upper-dir format.
pub(crate) fn overlay_tunables() -> String {
    // `,userxattr` in a user namespace (rootless), where `trusted.*` cannot be written.
    let mut data = crate::init::rootless::overlay_options().to_string();
    for (param, value) in [
        ("redirect_dir", "off"),
        ("metacopy", "off"),
        ("index", "off"),
    ] {
        if Path::new("/sys/module/overlay/parameters")
            .join(param)
            .exists()
        {
            let value = crate::init::rootless::overlay_param(param, value);
            data.push_str(&format!(",{param}={value}"));
        }
    }
    data
}

fn read_optional(path: &str) -> Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(SetupError::io("read", path, e)),
    }
}

fn resolve_user(spec: &str) -> Result<ExecUser> {
    let passwd = read_optional("/etc/passwd")?;
    let group = read_optional("/etc/group")?;
    user::resolve(spec, &passwd, &group)
}

/// The process env plus HOME from passwd when unset (as Docker does).
pub(crate) fn env_for(process: &Process, user: &ExecUser) -> Vec<String> {
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|kv| kv.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    env
}

/// Looks `argv[0]` up in the command's own PATH (not the init's), inside the new root.
fn find_program(argv: &[&[u8]], env: &[String]) -> Result<PathBuf> {
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

/// In the command's process: rlimits, capabilities, user, no_new_privs, cwd, seccomp, exec. Returns
/// only on failure.
fn exec_command(
    process: &Process,
    argv: &[&[u8]],
    seccomp: Option<&LinuxSeccomp>,
    user: &ExecUser,
    cwd: &Path,
    program: &Path,
    env: &[String],
) -> SetupError {
    match prepare_and_exec(process, argv, seccomp, user, cwd, program, env) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn prepare_and_exec(
    process: &Process,
    argv: &[&[u8]],
    seccomp: Option<&LinuxSeccomp>,
    user: &ExecUser,
    cwd: &Path,
    program: &Path,
    env: &[String],
) -> Result<std::convert::Infallible> {
    setsid().map_err(|e| SetupError::sys("setsid", e))?;
    reset_signals()?;
    for rl in process.rlimits().iter().flatten() {
        let resource = rlimit_resource(rl.typ());
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(SetupError::sys("setrlimit", Errno::last()));
        }
    }
    let caps_spec = process.capabilities().clone().unwrap_or_default();
    caps::drop_bounding(&caps_spec)?;
    let groups: Vec<Gid> = user
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    crate::init::rootless::set_groups(&groups)?;
    setgid(Gid::from_raw(user.gid)).map_err(|e| SetupError::sys("setgid", e))?;
    setuid(Uid::from_raw(user.uid)).map_err(|e| SetupError::sys("setuid", e))?;
    if user.uid == 0 {
        caps::apply_sets(&caps_spec)?;
    }
    if process.no_new_privileges().unwrap_or(true) {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(SetupError::sys("set no_new_privs", Errno::last()));
        }
    }
    std::env::set_current_dir(cwd).map_err(|e| SetupError::io("chdir", cwd, e))?;
    // Compiled before installing: nothing allocates between the filter and execve.
    let filter = match seccomp {
        Some(section) => Some(crate::shared::seccomp::compile(section)?),
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
    crate::shared::trace::mark("command: exec");
    if let Some(filter) = &filter {
        crate::shared::seccomp::install(filter)?;
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

fn rlimit_resource(typ: oci_spec::runtime::PosixRlimitType) -> libc::__rlimit_resource_t {
    use oci_spec::runtime::PosixRlimitType as T;
    match typ {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// In pid 1: kills every other process of the pid namespace and reaps them all.
fn kill_all_and_reap() -> Result<()> {
    // kill(-1) from a pid namespace's init reaches every process of the namespace but itself.
    match nix::sys::signal::kill(Pid::from_raw(-1), nix::sys::signal::Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => return Err(SetupError::sys("kill the sandbox's processes", e)),
    }
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(()),
            Err(e) => return Err(SetupError::sys("reap the sandbox's processes", e)),
        }
    }
}

/// Reaps every child (zombies re-parented to pid 1 included) until `command` has exited.
fn reap_until(command: Pid) -> Result<Status> {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => return Ok(Status::Exited(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == command => {
                return Ok(Status::Signaled(sig as i32))
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(SetupError::sys("wait for command", e)),
        }
    }
}
