//! `--isolation=chroot`, the init's side (rbuild's is `launch::chroot`): no namespace, no
//! mount. The init (forked plainly by the zygote) becomes a child subreaper, so that whatever
//! the command leaves behind comes back to it; mounts /proc and a read-only /sys in a
//! private mount namespace where that is permitted ([`mount_what_may_be`]; absent
//! otherwise); enters the copied root with `chroot(2)`;
//! resolves the user, working directory and program there; and forks the command, which
//! takes the capabilities of the spec that this process holds, the user, no_new_privs and
//! seccomp as in the sandbox (`init::command`). When the command has exited, the init kills
//! its process group and every process left among its own children (daemons re-parented to
//! it), reaps them, and only then reports how the command ended. On SIGTERM (a cancelled
//! build) it kills the command's process group and exits.
//!
//! Without a pid namespace it cannot kill what escaped both (a process that made its own
//! session and whose parent is still alive when the command exits): chroot isolation is
//! weaker, which the build says.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, SigHandler, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{fork, ForkResult, Pid};

use crate::init::command::{env_for, exec_command, find_program, Command};
use crate::init::mounts;
use crate::init::pid1::{reap_until, resolve_user};
use crate::init::rootless;
use crate::init::status::{release_output, StatusWriter};
use crate::shared::caps;
use crate::shared::error::{Result, SetupError};
use crate::shared::paths::secure_join;
use crate::shared::protocol::InitConfig;
use crate::shared::runtime_spec::need;
use oci_spec::runtime::Linux;

/// The command's pid (its process group), for the SIGTERM handler; 0 before the fork.
static COMMAND: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_term(_: libc::c_int) {
    let pid = COMMAND.load(Ordering::SeqCst);
    // SAFETY: kill and _exit are async-signal-safe.
    unsafe {
        if pid > 0 {
            libc::kill(-pid, libc::SIGKILL);
        }
        libc::_exit(128 + libc::SIGTERM);
    }
}

/// Runs the command of `cfg` in a chroot of its copied root, reaps, reports. Returns the
/// init's exit code.
pub(crate) fn chroot_stage(cfg: &InitConfig, status: &mut StatusWriter) -> Result<i32> {
    let spec = &cfg.spec;
    // `--memory` & co.: the run's cgroup first (an unprivileged pod refuses it, and says so).
    crate::shared::cgroups::enter(spec)?;
    let linux = need(spec.linux().as_ref(), "linux")?;
    let process = need(spec.process().as_ref(), "process")?;
    let root = cfg.rootfs_bind.as_ref().ok_or(SetupError::SpecField {
        field: "the copied root of a chroot run",
    })?;
    // Before the chroot: the root has no /proc. What this process holds and where its
    // children are listed are read now or through descriptors opened now.
    rootless::privileges();
    let held = caps::permitted_now()?;
    let task = std::fs::File::open(format!("/proc/self/task/{}", std::process::id()))
        .map_err(|e| SetupError::io("open", "/proc/self/task", e))?;
    let mut process = process.clone();
    if let Some(wanted) = process.capabilities() {
        process.set_capabilities(Some(caps::restrict(wanted, held)));
    }
    // libc: nix has no PR_SET_CHILD_SUBREAPER.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(SetupError::sys("become a child subreaper", Errno::last()));
    }
    // SAFETY: the handler only calls async-signal-safe functions.
    unsafe { nix::sys::signal::signal(Signal::SIGTERM, SigHandler::Handler(on_term)) }
        .map_err(|e| SetupError::sys("handle SIGTERM", e))?;
    mount_what_may_be(root, linux);
    nix::unistd::chroot(root).map_err(|e| SetupError::sys("chroot into the RUN's root", e))?;
    std::env::set_current_dir("/").map_err(|e| SetupError::io("chdir", "/", e))?;

    let user = resolve_user(&cfg.user)?;
    let cwd = PathBuf::from(process.cwd());
    std::fs::create_dir_all(&cwd)
        .map_err(|e| SetupError::io("create working directory", &cwd, e))?;
    let env = env_for(&process, &user);
    let argv = cfg.command();
    let program = find_program(&argv, &env)?;

    // SAFETY: the init is single-threaded.
    match unsafe { fork() }.map_err(|e| SetupError::sys("fork command", e))? {
        ForkResult::Child => {
            let err = exec_command(&Command {
                process: &process,
                argv: &argv,
                seccomp: linux.seccomp().as_ref(),
                user: &user,
                cwd: &cwd,
                program: &program,
                env: &env,
            });
            status.send(&crate::shared::protocol::Status::SetupFailed(
                err.to_string(),
            ));
            std::process::exit(127)
        }
        ForkResult::Parent { child } => {
            COMMAND.store(child.as_raw(), Ordering::SeqCst);
            let end = reap_until(child)?;
            kill_leftovers(child, &task.into())?;
            release_output();
            status.send(&end);
            Ok(0)
        }
    }
}

/// Where this process may make a mount namespace and mount (root with CAP_SYS_ADMIN whose
/// pid namespace could not be made, or rootless): a private mount namespace for the run, with
/// the host's device nodes bound where they could not be made, /proc
/// (a fresh procfs of the host's pid namespace, else the host's bound), a read-only /sys and
/// the spec's masked and read-only paths (/proc/kcore, /proc/sys…), as the sandbox has them.
/// Anything refused leaves them all absent (what was mounted is detached), which the build's
/// warning says may be so.
fn mount_what_may_be(root: &Path, linux: &Linux) {
    if unshare(CloneFlags::CLONE_NEWNS).is_err() || mounts::make_private().is_err() {
        return;
    }
    // Device nodes that could not be made are empty files (`launch::chroot`): bind the
    // host's over them, each where the kernel lets us.
    for dev in linux.devices().iter().flatten() {
        let Ok(target) = secure_join(root, dev.path()) else {
            continue;
        };
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_file()) {
            let _ = mount(
                Some(dev.path()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            );
        }
    }
    let (Ok(proc_dir), Ok(sys_dir)) = (
        secure_join(root, Path::new("proc")),
        secure_join(root, Path::new("sys")),
    ) else {
        return;
    };
    let attempt = || -> std::result::Result<(), Errno> {
        let hidden = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if mount(Some("proc"), &proc_dir, Some("proc"), hidden, None::<&str>).is_err() {
            // A fresh procfs is refused where the host's is partly masked: bind that one.
            let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(Some("/proc"), &proc_dir, None::<&str>, rbind, None::<&str>)?;
        }
        let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
        mount(Some("/sys"), &sys_dir, None::<&str>, bind, None::<&str>)?;
        // In a user namespace the flags the kernel locked on /sys must be kept.
        let ro = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | hidden
            | rootless::locked_flags(&sys_dir);
        mount(None::<&str>, &sys_dir, None::<&str>, ro, None::<&str>)?;
        let masked = linux.masked_paths().as_deref().unwrap_or(&[]);
        let readonly = linux.readonly_paths().as_deref().unwrap_or(&[]);
        mounts::mask_paths(root, masked)
            .and_then(|()| mounts::readonly_paths(root, readonly))
            .map_err(|_| Errno::EPERM)
    };
    if attempt().is_err() {
        for dir in [&proc_dir, &sys_dir] {
            let _ = umount2(dir.as_path(), MntFlags::MNT_DETACH);
        }
    }
}

/// Kills the command's process group, then every child this subreaper still has (listed in
/// `task`, its `/proc/self/task/<tid>` directory, zombies included), reaping one at a time,
/// until none is left (a killed child's children come back to us and are killed in turn).
fn kill_leftovers(command: Pid, task: &OwnedFd) -> Result<()> {
    match kill(Pid::from_raw(-command.as_raw()), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => return Err(SetupError::sys("kill the command's process group", e)),
    }
    loop {
        let left = children(task)?;
        if left.is_empty() {
            return Ok(());
        }
        for pid in left {
            let _ = kill(pid, Signal::SIGKILL);
        }
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::__WALL)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => return Ok(()),
            Err(e) => return Err(SetupError::sys("reap the command's processes", e)),
        }
    }
}

/// The pids in `task`'s `children` file.
fn children(task: &OwnedFd) -> Result<Vec<Pid>> {
    let fd = openat(
        Some(task.as_fd().as_raw_fd()),
        "children",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SetupError::sys("open /proc/self/task/<tid>/children", e))?;
    let mut text = String::new();
    // SAFETY: openat returned a new descriptor, owned by this File from here on.
    let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    file.read_to_string(&mut text)
        .map_err(|e| SetupError::io("read", "/proc/self/task/<tid>/children", e))?;
    Ok(text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(Pid::from_raw)
        .collect())
}
