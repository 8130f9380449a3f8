//! The feature-parity floor of a `RUN true` (issue 17, item 3): with bare system calls, what
//! the OCI runtime spec BuildKit hands runc for `RUN ["/bin/sh", "-c", "true"]` on a 21-layer
//! image asks for, i.e. what runc does minus its Go runtime and its processes; no rbuild, no
//! config, no status channel, no store. Each iteration, phase by phase:
//!
//! 1. `spare` (made ahead, not in the run's time): a network, IPC and UTS namespace with `lo`
//!    up ([`spare`]), as rbuild's zygote keeps them ready;
//! 2. `prepare`: a fresh upper, work dir and mount point on the disk;
//! 3. `clone`: a fork-like `clone` into new mount and pid namespaces, until the child runs;
//! 4. `join`: `setns` into the spare's three namespaces and `sethostname`;
//! 5. `private`: the mount tree made private (`MS_REC | MS_PRIVATE` on `/`);
//! 6. `overlay`: the overlay of 21 lowers (20 small layers over a busybox rootfs) and the
//!    fresh upper, with rbuild's options (`volatile` where the kernel takes it,
//!    `redirect_dir`, `metacopy` and `index` off);
//! 7. `mounts`: /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /etc/resolv.conf and
//!    /etc/hosts ([`mounts::spec_mounts`]);
//! 8. `devices`: six device nodes and six links in /dev;
//! 9. `masked`, 10. `readonly`: BuildKit's masked and read-only paths;
//! 11. `pivot`: `pivot_root`, the old root made a slave and detached;
//! 12. `start`: setsid, capabilities, user, no_new_privs ([`start::start`]);
//! 13. `filter`: the seccomp filter rbuild compiles from Docker's default profile for these
//!     capabilities (compiled once, before the runs: runc's libseccomp compiles in its init);
//! 14. `exec+exit`: `execve("/bin/sh -c true")` (busybox) as pid 1, until the parent's `waitpid`
//!     returns: the exec, the shell, its exit and the namespaces' teardown (the mounts go with
//!     the mount namespace);
//! 15. `cleanup`: the iteration's directories removed and the spare's descriptors closed.
//!
//! The `parity-fork` variant starts the command as rbuild does: pid 1 forks it and waits
//! ([`Pid1::Fork`]; `start` then includes the fork, `exec+exit` pid 1's wait and exit).
//!
//! Not done, because this host's BuildKit spec would not ask for it or rbuild does not do it:
//! a cgroup namespace (BuildKit adds one on cgroup v2 only; this host is v1), the cgroup
//! per container runc makes from containerd's default `cgroupsPath` and /sys/fs/cgroup, rlimits
//! (BuildKit drops the spec's when the build sets none). runc execs the command as pid 1, as
//! here; rbuild's pid 1 forks it and stays to reap.

mod mounts;
mod spare;
mod start;

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::Capability;
use rbuild_sandbox::seccomp;
use seccompiler::BpfProgram;

use crate::Stamps;
use spare::Namespaces;

/// What `PARITY_SHOW=1` runs once before the measured runs, to show the sandbox the floor
/// makes: its mounts, devices, credentials, capabilities, seccomp mode, hostname and session.
pub const SHOW: &CStr = c"cat /proc/self/mountinfo; ls -l /dev; hostname; \
    grep -E '^(Uid|Gid|Groups|Cap|NoNewPrivs|Seccomp)' /proc/self/status; \
    echo pid $$ sid $(cut -d' ' -f6 /proc/self/stat)";

/// The phases, in order; phase `i` ends at stamp `i + 1`.
pub const PHASES: [&str; 15] = [
    "spare",
    "prepare",
    "clone",
    "join",
    "private",
    "overlay",
    "mounts",
    "devices",
    "masked",
    "readonly",
    "pivot",
    "start",
    "filter",
    "exec+exit",
    "cleanup",
];

/// The phases a run waits for: `prepare` to `exec+exit`.
pub const TO_EXIT: std::ops::Range<usize> = 1..14;

/// How many lowers the overlay has: a 21-layer image (busybox and 20 `RUN true` layers).
const LOWERS: usize = 21;

/// The hostname BuildKit gives every RUN.
const HOSTNAME: &[u8] = b"buildkitsandbox";

/// A failed step in pid 1: what, and the error.
pub struct Failed(&'static str, std::io::Error);

/// A step of pid 1's setup.
pub type Step = Result<(), Failed>;

/// `Ok` for a system call's 0, else the step's failure with `errno`.
pub fn check(rc: libc::c_int, what: &'static str) -> Step {
    if rc == 0 {
        Ok(())
    } else {
        Err(Failed(what, std::io::Error::last_os_error()))
    }
}

/// How pid 1 starts the command: it execs it (runc's way, the command is pid 1), or it forks
/// it and waits (rbuild's way: pid 1 stays to reap; `start` then includes the fork, and
/// `exec+exit` pid 1's wait and exit).
#[derive(Clone, Copy, PartialEq)]
pub enum Pid1 {
    Exec,
    Fork,
}

/// What every iteration uses, made once: the lowers, the /etc files, the compiled filter.
pub struct Parity {
    /// `lowerdir=…` (topmost first, busybox last).
    lowers: String,
    /// `,volatile` and the tunables, as rbuild mounts its overlays.
    tunables: String,
    hosts: CString,
    resolv: CString,
    filter: Vec<BpfProgram>,
    last_cap: u32,
    host: Namespaces,
}

impl Parity {
    /// Makes the 21 lowers under `dir` (the last the busybox rootfs `busybox`, which gets the
    /// mount points of the spec's mounts, as an image's init layer has them), the build's
    /// hosts and resolv.conf files, and compiles the filter.
    pub fn prepare(dir: &Path, busybox: &Path, volatile: bool) -> Parity {
        for d in ["proc", "dev", "sys"] {
            std::fs::create_dir_all(busybox.join(d)).expect("mkdir mount point");
        }
        for f in ["etc/hosts", "etc/resolv.conf"] {
            std::fs::write(busybox.join(f), "").expect("mount point file");
        }
        let mut lowers: Vec<PathBuf> = (1..LOWERS).rev().map(|i| small_layer(dir, i)).collect();
        lowers.push(busybox.to_path_buf());
        let (hosts, resolv) = (dir.join("hosts"), dir.join("resolv.conf"));
        std::fs::write(
            &hosts,
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost\n",
        )
        .expect("hosts");
        std::fs::write(&resolv, "nameserver 10.0.2.3\n").expect("resolv.conf");
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .expect("cap_last_cap")
            .trim()
            .parse()
            .expect("cap_last_cap number");
        Parity {
            lowers: lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
            tunables: tunables(volatile),
            hosts: cstring(&hosts),
            resolv: cstring(&resolv),
            filter: compile_filter(),
            last_cap,
            host: Namespaces::current(),
        }
    }

    /// One run of `/bin/sh -c script` under `base`; the duration of each phase.
    pub fn iteration(
        &self,
        stamps: &Stamps,
        base: &Path,
        n: u64,
        script: &CStr,
        pid1: Pid1,
    ) -> Vec<Duration> {
        stamps.clear();
        stamps.set(0);
        let spare = Namespaces::make(&self.host);
        stamps.set(1);
        let dir = base.join(format!("p{n}"));
        let (root, options) = self.run_dirs(&dir);
        stamps.set(2);
        let status = self.run(stamps, &spare, &root, &options, (script, pid1));
        stamps.set(14);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "parity: the run failed (status {status:#x})"
        );
        std::fs::remove_dir_all(&dir).expect("remove the iteration's dirs");
        drop(spare);
        stamps.set(15);
        (0..PHASES.len())
            .map(|i| Duration::from_nanos(stamps.get(i + 1).saturating_sub(stamps.get(i))))
            .collect()
    }

    /// Makes the run's upper, work dir and mount point under `dir`; the mount point and the
    /// overlay's options.
    fn run_dirs(&self, dir: &Path) -> (CString, CString) {
        let (upper, work, root) = (dir.join("u"), dir.join("w"), dir.join("root"));
        for d in [&upper, &work, &root] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let options = CString::new(format!(
            "lowerdir={},upperdir={},workdir={}{}",
            self.lowers,
            upper.display(),
            work.display(),
            self.tunables
        ))
        .expect("options");
        (cstring(&root), options)
    }

    /// Clones pid 1 into new mount and pid namespaces and waits for it; its wait status.
    fn run(
        &self,
        stamps: &Stamps,
        spare: &Namespaces,
        root: &CString,
        options: &CString,
        command: (&CStr, Pid1),
    ) -> libc::c_int {
        let pid = crate::fork_into(libc::CLONE_NEWNS | libc::CLONE_NEWPID);
        if pid == 0 {
            self.child(stamps, spare, root, options, command);
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        let waited = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        assert_eq!(waited, pid as libc::pid_t, "waitpid");
        status
    }

    /// Pid 1: stamps 3..=13, then execs the command, or forks it and waits (`command`: the
    /// script and how); on a failed step, says which and exits 1.
    fn child(
        &self,
        stamps: &Stamps,
        spare: &Namespaces,
        root: &CString,
        options: &CString,
        (script, pid1): (&CStr, Pid1),
    ) -> ! {
        stamps.set(3);
        let mut ready = self.setup(stamps, spare, root, options);
        if ready.is_ok() && pid1 == Pid1::Fork {
            ready = fork_command();
        }
        let failed = match ready {
            Ok(()) => self.start_and_exec(stamps, script),
            Err(failed) => failed,
        };
        eprintln!("parity floor: {}: {}", failed.0, failed.1);
        // SAFETY: _exit in the forked child.
        unsafe { libc::_exit(1) }
    }

    /// The command's start (stamp 12), the filter (13), and its exec; returns only on failure.
    fn start_and_exec(&self, stamps: &Stamps, script: &CStr) -> Failed {
        let started = start::start(self.last_cap).and_then(|()| {
            stamps.set(12);
            start::install(&self.filter)
        });
        match started {
            Ok(()) => {
                stamps.set(13);
                start::exec(script)
            }
            Err(failed) => failed,
        }
    }

    /// Pid 1's setup up to the pivot, stamping the end of each phase.
    fn setup(
        &self,
        stamps: &Stamps,
        spare: &Namespaces,
        root: &CString,
        options: &CString,
    ) -> Step {
        if !spare.join() {
            return Err(Failed("setns", std::io::Error::last_os_error()));
        }
        // SAFETY: sethostname with a buffer and its length.
        check(
            unsafe { libc::sethostname(HOSTNAME.as_ptr().cast(), HOSTNAME.len()) },
            "sethostname",
        )?;
        stamps.set(4);
        let private = libc::MS_REC | libc::MS_PRIVATE;
        // SAFETY: mount(2) with NUL-terminated strings (or nulls) that outlive the calls; chdir.
        unsafe {
            let rc = libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                private,
                std::ptr::null(),
            );
            check(rc, "make / private")?;
            stamps.set(5);
            let overlay = c"overlay".as_ptr();
            check(
                libc::mount(overlay, root.as_ptr(), overlay, 0, options.as_ptr().cast()),
                "overlay",
            )?;
            check(libc::chdir(root.as_ptr()), "chdir rootfs")?;
        }
        stamps.set(6);
        mounts::spec_mounts(&self.hosts, &self.resolv)?;
        stamps.set(7);
        mounts::devices()?;
        stamps.set(8);
        mounts::masked()?;
        stamps.set(9);
        mounts::readonly()?;
        stamps.set(10);
        mounts::pivot()?;
        stamps.set(11);
        Ok(())
    }
}

/// In pid 1: forks the command's process and returns in it; pid 1 waits for it (reaping any
/// other child) and exits with its status.
fn fork_command() -> Step {
    // SAFETY: fork of a single-threaded process; waitpid and _exit in pid 1.
    unsafe {
        let command = libc::fork();
        if command <= 0 {
            return check(command, "fork the command");
        }
        let mut status = 0;
        loop {
            let reaped = libc::waitpid(-1, &mut status, 0);
            if reaped == command {
                break;
            }
            if reaped < 0
                && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                libc::_exit(1)
            }
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            1
        };
        libc::_exit(code)
    }
}

/// Lower `i` of the image: one small file, `/tmp/layer-i`, as a `RUN` step's layer.
fn small_layer(dir: &Path, i: usize) -> PathBuf {
    let layer = dir.join(format!("l{i:02}"));
    std::fs::create_dir_all(layer.join("tmp")).expect("mkdir layer");
    std::fs::write(layer.join(format!("tmp/layer-{i}")), format!("{i}\n")).expect("layer file");
    layer
}

/// The options rbuild adds to the lowers (`init::root`): `volatile` where the kernel takes
/// it, and `redirect_dir`, `metacopy` and `index` off where the module knows them.
fn tunables(volatile: bool) -> String {
    let mut out = String::from(if volatile { ",volatile" } else { "" });
    for param in ["redirect_dir", "metacopy", "index"] {
        if Path::new("/sys/module/overlay/parameters")
            .join(param)
            .exists()
        {
            out.push_str(&format!(",{param}=off"));
        }
    }
    out
}

/// The filter rbuild installs for a RUN with Docker's default capabilities.
fn compile_filter() -> Vec<BpfProgram> {
    let caps: Vec<Capability> = DEFAULT_CAP_NAMES.to_vec();
    let section = seccomp::spec_section(&caps)
        .expect("the seccomp section")
        .expect("a filter on this architecture");
    let started = Instant::now();
    let filter = seccomp::compile(&section).expect("compile the filter");
    let len: usize = filter.iter().map(Vec::len).sum();
    eprintln!(
        "parity floor: filter of {} programs, {len} instructions, compiled in {:.3} ms (once)",
        filter.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    filter
}

/// [`start::DEFAULT_CAPS`] by name, for the seccomp profile (which allows some syscalls by
/// capability).
const DEFAULT_CAP_NAMES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::NetRaw,
    Capability::SysChroot,
    Capability::Mknod,
    Capability::AuditWrite,
    Capability::Setfcap,
];

fn cstring(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}
