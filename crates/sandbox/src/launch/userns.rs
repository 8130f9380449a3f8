//! Rootless rbuild: entering a user namespace at startup ([`enter`]).
//!
//! An unprivileged rbuild does what rootless podman and buildah do: the process forks; the
//! child unshares a new user namespace and the parent maps it with `newuidmap`/`newgidmap`
//! (0 → the caller's uid/gid, 1..=n → the caller's `/etc/subuid` and `/etc/subgid` ranges),
//! then only waits for the child (forwarding SIGTERM and SIGHUP) and exits with its status.
//! The child goes on as root of that namespace: it unpacks base images with their owners,
//! chowns for `COPY --chown`, creates whiteouts and mounts overlayfs (with `userxattr`), all on
//! files that, seen from the host, belong to the caller's uid and subordinate ids. So the
//! store's format and every layer are the same as a root build's.
//!
//! Without the helpers or a subordinate range, the process maps itself with a single id
//! (0 → uid, 0 → gid) and continues without forking; then only root exists inside: base-image
//! files owned by other ids are unpacked as root, and `chown` to any other id (in RUN or
//! `COPY --chown`) fails.
//!
//! After entering, a probe mounts an overlay (with `userxattr`) in a throwaway mount namespace
//! on the store's filesystem; when that fails the executor uses the copy-and-diff snapshotter
//! ([`Snapshotter::detect`](crate::launch::snapshotter::Snapshotter::detect) asks [`state`]).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use crate::shared::pdeathsig;
use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getpid, getppid, ForkResult, Gid, Pid, Uid};
use rbuild_types::{Privileges, UserNamespace};

/// What can stop rbuild from entering its user namespace.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("rootless: {op}: {source}")]
    Sys { op: &'static str, source: Errno },
    #[error(
        "rootless: cannot create a user namespace ({source}); check `sysctl user.max_user_namespaces` \
         and AppArmor's kernel.apparmor_restrict_unprivileged_userns"
    )]
    Unshare { source: Errno },
    #[error("rootless: {tool} {args} failed: {reason}")]
    MapTool {
        tool: PathBuf,
        args: String,
        reason: String,
    },
    #[error("rootless: write {path}: {source}")]
    Write {
        path: &'static str,
        source: std::io::Error,
    },
}

/// A range of subordinate ids from `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub start: u32,
    pub count: u32,
}

/// How the user namespace maps ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// 0 → `uid`, 1..=`subuid.count` → the subordinate range (likewise for groups).
    Subordinate {
        uid: u32,
        gid: u32,
        subuid: IdRange,
        subgid: IdRange,
    },
    /// Only 0 → `uid` and 0 → `gid`: no other id exists inside.
    Single { uid: u32, gid: u32 },
}

impl Mapping {
    /// `newuidmap`'s and `newgidmap`'s arguments after the pid (uid map first), or `None`
    /// for the single-id mapping.
    pub fn tool_args(&self) -> Option<[Vec<String>; 2]> {
        match self {
            Mapping::Subordinate {
                uid,
                gid,
                subuid,
                subgid,
            } => {
                let args = |own: u32, r: &IdRange| {
                    ["0", &own.to_string(), "1", "1", &r.start.to_string()]
                        .iter()
                        .map(|s| s.to_string())
                        .chain([r.count.to_string()])
                        .collect()
                };
                Some([args(*uid, subuid), args(*gid, subgid)])
            }
            Mapping::Single { .. } => None,
        }
    }
}

/// What rootless mode found when entering; see [`state`].
#[derive(Debug, Clone)]
pub struct Rootless {
    /// The caller's user name (or uid when it has none).
    pub user: String,
    pub mapping: Mapping,
    /// Why no subordinate-id mapping was used (no helpers, no ranges), if it was not.
    pub single_reason: Option<String>,
    /// `Err(why)` when overlayfs cannot be mounted in the user namespace.
    pub overlay: Result<(), String>,
}

impl Rootless {
    /// What works differently from a root build here, one sentence each (for the binary to
    /// say once per build); empty when rootless mode has everything it needs.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(why) = &self.single_reason {
            out.push(format!(
                "rootless: only uid/gid 0 is mapped ({why}): base-image files of other owners \
                 are unpacked as root, and chown to other ids (RUN, COPY --chown) fails; add \
                 a range for {} to /etc/subuid and /etc/subgid for full ownership",
                self.user
            ));
        }
        if let Err(why) = &self.overlay {
            out.push(format!(
                "rootless: overlayfs cannot be mounted in the user namespace ({why}); RUN uses \
                 the copy-and-diff snapshotter (same layers, slower)"
            ));
        }
        out
    }
}

static STATE: OnceLock<Rootless> = OnceLock::new();

/// What [`enter`] found, in the process that entered the user namespace; `None` elsewhere
/// (root, or before entering).
pub fn state() -> Option<&'static Rootless> {
    STATE.get()
}

/// Environment variable forcing the single-id mapping (`RBUILD_USERNS_MAPPING=single`).
pub const MAPPING_ENV: &str = "RBUILD_USERNS_MAPPING";

/// Moves an unprivileged process into a new user namespace where it is root, and returns the
/// privileges it has then: root of [`UserNamespace::Rootless`]. Root (`privileges`, detected
/// at startup by [`detect_privileges`](crate::detect_privileges)) stays where it is and gets
/// `privileges` back. Must be called while the process is single-threaded (first thing in
/// `main`). `store` is where the store lives (created if missing): the overlay probe runs on
/// its filesystem.
///
/// With the subordinate-id mapping this forks: only the child returns; the parent waits for
/// it and exits with its status. Errors are returned before any fork, or by the parent when
/// the mapping tools fail (the child then exits quietly).
pub fn enter(store: &Path, privileges: Privileges) -> Result<Privileges, UsernsError> {
    if privileges.uid == 0 {
        return Ok(privileges);
    }
    let (uid, gid) = (privileges.uid, privileges.gid);
    let user = nix::unistd::User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    let (mapping, single_reason) = choose_mapping(&user, uid, gid);
    match mapping.tool_args() {
        Some(args) => enter_mapped(&args)?,
        None => enter_single(uid, gid)?,
    }
    let overlay = probe_overlay(store);
    let _ = STATE.set(Rootless {
        user,
        mapping,
        single_reason,
        overlay,
    });
    Ok(Privileges {
        uid: 0,
        gid: 0,
        namespace: UserNamespace::Rootless,
    })
}

/// The subordinate-id mapping when the helpers and both ranges exist, else the single one
/// with the reason.
fn choose_mapping(user: &str, uid: u32, gid: u32) -> (Mapping, Option<String>) {
    if std::env::var(MAPPING_ENV).is_ok_and(|v| v == "single") {
        return (
            Mapping::Single { uid, gid },
            Some(format!("{MAPPING_ENV}=single")),
        );
    }
    let missing: Vec<&str> = ["newuidmap", "newgidmap"]
        .into_iter()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if !missing.is_empty() {
        return (
            Mapping::Single { uid, gid },
            Some(format!(
                "{} not installed (Debian package uidmap)",
                missing.join(" and ")
            )),
        );
    }
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let subuid = sub_range(&read("/etc/subuid"), user, uid);
    let subgid = sub_range(&read("/etc/subgid"), user, uid);
    match (subuid, subgid) {
        (Some(subuid), Some(subgid)) => (
            Mapping::Subordinate {
                uid,
                gid,
                subuid,
                subgid,
            },
            None,
        ),
        _ => (
            Mapping::Single { uid, gid },
            Some(format!(
                "no range for {user} in /etc/subuid and /etc/subgid"
            )),
        ),
    }
}

/// The first range of `user` (by name or numeric uid) in an `/etc/subuid`-format text.
pub fn sub_range(text: &str, user: &str, uid: u32) -> Option<IdRange> {
    let uid = uid.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
        if owner != user && owner != uid {
            return None;
        }
        let range = IdRange {
            start: start.trim().parse().ok()?,
            count: count.trim().parse().ok()?,
        };
        (range.count > 0).then_some(range)
    })
}

/// `name` in `$PATH` or the usual bin directories.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Maps itself 0 → `uid`, 0 → `gid` (allowed without helpers, after denying setgroups).
fn enter_single(uid: u32, gid: u32) -> Result<(), UsernsError> {
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|source| UsernsError::Unshare { source })?;
    for (path, text) in [
        ("/proc/self/setgroups", "deny".to_string()),
        ("/proc/self/uid_map", format!("0 {uid} 1\n")),
        ("/proc/self/gid_map", format!("0 {gid} 1\n")),
    ] {
        std::fs::write(path, text).map_err(|source| UsernsError::Write { path, source })?;
    }
    Ok(())
}

/// The pid the parent forwards SIGTERM and SIGHUP to.
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let child = CHILD.load(Ordering::Relaxed);
    if let (true, Ok(sig)) = (child > 0, Signal::try_from(sig)) {
        // kill is async-signal-safe (nix's only wraps it).
        let _ = nix::sys::signal::kill(Pid::from_raw(child), sig);
    }
}

fn sys(op: &'static str) -> impl FnOnce(Errno) -> UsernsError {
    move |source| UsernsError::Sys { op, source }
}

fn write_byte(fd: &OwnedFd, b: u8) -> bool {
    nix::unistd::write(fd, &[b]).is_ok_and(|n| n == 1)
}

fn read_byte(fd: &OwnedFd) -> Option<u8> {
    let mut buf = [0u8; 1];
    loop {
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(fd), &mut buf) {
            Ok(1) => return Some(buf[0]),
            Err(Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

/// Forks; the child unshares its user namespace, the parent maps it with the helpers, then
/// waits for it. Returns only in the child (once mapped) or with the parent's error.
fn enter_mapped(args: &[Vec<String>; 2]) -> Result<(), UsernsError> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(sys("pipe"))?;
    let (go_r, go_w) = nix::unistd::pipe().map_err(sys("pipe"))?;
    let parent = getpid();
    // SAFETY: called while single-threaded (first thing in main), as documented on `enter`.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop((ready_r, go_w));
            pdeathsig::set_pdeathsig().map_err(|_| UsernsError::Sys {
                op: "set parent death signal",
                source: Errno::last(),
            })?;
            if getppid() != parent {
                std::process::exit(1);
            }
            if let Err(source) = unshare(CloneFlags::CLONE_NEWUSER) {
                write_byte(&ready_w, b'0');
                return Err(UsernsError::Unshare { source });
            }
            write_byte(&ready_w, b'1');
            if read_byte(&go_r) != Some(b'1') {
                // The parent failed to map us and reports why.
                std::process::exit(1);
            }
            // Clear the caller's supplementary groups (unmapped inside).
            let _ = nix::unistd::setgroups(&[]);
            nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
                .map_err(sys("setresgid 0"))?;
            nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
                .map_err(sys("setresuid 0"))?;
            Ok(())
        }
        ForkResult::Parent { child } => {
            drop((ready_w, go_r));
            if read_byte(&ready_r) != Some(b'1') {
                // The child could not unshare and reports it.
                exit_like(wait_child(child));
            }
            for (tool, tool_args) in ["newuidmap", "newgidmap"].iter().zip(args) {
                if let Err(e) = run_map_tool(tool, child, tool_args) {
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    let _ = wait_child(child);
                    return Err(e);
                }
            }
            CHILD.store(child.as_raw(), Ordering::Relaxed);
            let forwarded = SigHandler::Handler(forward);
            // SAFETY: installing plain handlers (`forward` only calls kill) and SIG_IGN.
            unsafe {
                let _ = signal(Signal::SIGTERM, forwarded);
                let _ = signal(Signal::SIGHUP, forwarded);
                // The terminal sends these to the whole foreground group, child included.
                let _ = signal(Signal::SIGINT, SigHandler::SigIgn);
                let _ = signal(Signal::SIGQUIT, SigHandler::SigIgn);
            }
            write_byte(&go_w, b'1');
            drop(go_w);
            exit_like(wait_child(child))
        }
    }
}

fn run_map_tool(tool: &str, child: Pid, args: &[String]) -> Result<(), UsernsError> {
    let exe = find_tool(tool).unwrap_or_else(|| PathBuf::from(tool));
    let shown = format!("{} {}", child, args.join(" "));
    let out = Command::new(&exe)
        .arg(child.to_string())
        .args(args)
        .output()
        .map_err(|e| UsernsError::MapTool {
            tool: exe.clone(),
            args: shown.clone(),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(UsernsError::MapTool {
            tool: exe,
            args: shown,
            reason: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

fn wait_child(child: Pid) -> WaitStatus {
    loop {
        match waitpid(child, None) {
            Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return st,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return WaitStatus::Exited(child, 1),
        }
    }
}

/// Exits with the child's exit code, or 128 + its signal.
fn exit_like(st: WaitStatus) -> ! {
    match st {
        WaitStatus::Exited(_, code) => std::process::exit(code),
        WaitStatus::Signaled(_, sig, _) => std::process::exit(128 + sig as i32),
        _ => std::process::exit(1),
    }
}

/// Mounts a throwaway overlay (with `userxattr`) in a new mount namespace on `store`'s
/// filesystem and deletes a lower file through it (a whiteout). `Err(why)` when that fails.
fn probe_overlay(store: &Path) -> Result<(), String> {
    std::fs::create_dir_all(store).map_err(|e| format!("create {}: {e}", store.display()))?;
    let dir = tempfile::Builder::new()
        .prefix(".overlay-probe-")
        .tempdir_in(store)
        .map_err(|e| format!("create a probe dir in {}: {e}", store.display()))?;
    let base = dir.path();
    for sub in ["l", "u", "w", "m"] {
        std::fs::create_dir(base.join(sub)).map_err(|e| format!("mkdir: {e}"))?;
    }
    std::fs::write(base.join("l/f"), b"").map_err(|e| format!("write: {e}"))?;
    let data = format!(
        "lowerdir={0}/l,upperdir={0}/u,workdir={0}/w,userxattr",
        base.display()
    );
    let merged = base.join("m");
    // SAFETY: single-threaded (see `enter`); the child only makes system calls and exits.
    let res = match unsafe { fork() } {
        Err(e) => Err(format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            let code = match probe_child(&data, &merged) {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            // libc: nix has no _exit (std's exit would run the parent's atexit handlers).
            // SAFETY: _exit skips atexit handlers and destructors of the parent's state.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => match wait_child(child) {
            WaitStatus::Exited(_, 0) => Ok(()),
            WaitStatus::Exited(_, code) => Err(format!(
                "mount -t overlay -o {data}: {}",
                Errno::from_raw(code)
            )),
            other => Err(format!("overlay probe ended with {other:?}")),
        },
    };
    // The upper dir holds a whiteout owned by us: removable like any file.
    drop(dir);
    res
}

fn probe_child(data: &str, merged: &Path) -> Result<(), Errno> {
    use nix::mount::{mount, MsFlags};
    unshare(CloneFlags::CLONE_NEWNS)?;
    crate::shared::propagation::make_rprivate()?;
    mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(data),
    )?;
    std::fs::remove_file(merged.join("f"))
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_ranges_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:0\n";
        assert_eq!(
            sub_range(text, "alice", 1000),
            Some(IdRange {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            sub_range(text, "carol", 1001),
            Some(IdRange {
                start: 200000,
                count: 1000
            })
        );
        assert_eq!(sub_range(text, "bob", 1002), None, "empty range");
        assert_eq!(sub_range("garbage\n", "alice", 1000), None);
    }

    #[test]
    fn subordinate_mapping_arguments() {
        let m = Mapping::Subordinate {
            uid: 1000,
            gid: 1001,
            subuid: IdRange {
                start: 100000,
                count: 65536,
            },
            subgid: IdRange {
                start: 200000,
                count: 10,
            },
        };
        let [u, g] = m.tool_args().expect("args");
        assert_eq!(u, ["0", "1000", "1", "1", "100000", "65536"]);
        assert_eq!(g, ["0", "1001", "1", "1", "200000", "10"]);
        assert_eq!(Mapping::Single { uid: 1, gid: 1 }.tool_args(), None);
    }
}
