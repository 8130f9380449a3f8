//! The floor of a sandboxed `RUN true` (issue 17, item 3): the kernel work no sandbox can
//! avoid, done with bare system calls, phase by phase, without rbuild, a config, a status
//! channel, a layer or a store. Each iteration:
//!
//! 1. `prepare`: makes a fresh upper and work directory (and the mount point) on the disk;
//! 2. `clone`: a fork-like `clone` into new namespaces, until the child runs;
//! 3. `private`: the child makes its mount tree private (`MS_REC | MS_PRIVATE` on `/`);
//! 4. `overlay`: mounts an overlay of the busybox lower with the fresh upper;
//! 5. `proc`: mounts `/proc` in it (a RUN needs one; the `bare` variants leave it out);
//! 6. `pivot`: `pivot_root(".", ".")` and a lazy unmount of the old root;
//! 7. `exec+exit`: `execve("/bin/true")` as pid 1, until the parent's `waitpid` returns: the
//!    exec, the run, the exit and what the kernel tears down before reporting it (the pid
//!    namespace, the mount namespace with the overlay); a network namespace is freed later, by
//!    a kernel worker (`cleanup_net`), on some CPU but not on this path;
//! 8. `cleanup`: removes the iteration's directories.
//!
//! Variants (interleaved, so load from other processes hits them alike):
//! - `ahead`: new mount and pid namespaces only, the way rbuild's zygote clones an init into a
//!   network, IPC and UTS namespace made ahead (`init::spare_ns`, `init::spare_net`);
//! - `all`: new mount, pid, network, IPC and UTS namespaces at the clone (and `lo` left down);
//! - `ahead-bare`: as `ahead`, without `/proc`;
//! - `fork`: a plain fork and exec of `/bin/true` on the host (no namespaces, no mounts): the
//!   process floor;
//! - `parity`: the feature-parity floor (`parity`): everything BuildKit's spec asks runc to do
//!   for `RUN /bin/sh -c true` on a 21-layer image, phase by phase in a table of its own;
//!   `parity-fork` the same with the command forked by pid 1, as rbuild starts it.
//!
//! Run: `cargo bench -p rbuild-sandbox --bench floor` as root (`benches/run_step/floor.sh`).
//! `RUNS=N` iterations per variant (default 200); `FLOOR_DIR=DIR` the directory the lowers,
//! uppers and work dirs are made under (default `/var/tmp`: a disk filesystem, like rbuild's
//! store; its upper dirs live there). Prints the median of each phase and of the
//! whole, in ms.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "../tests/common/mod.rs"]
mod common;

mod parity;
mod peer;

use parity::Pid1;
use peer::{env_number, ms, stats};

/// Stamps, in the shared page: index of each phase's end.
const PHASES: [&str; 8] = [
    "prepare",
    "clone",
    "private",
    "overlay",
    "proc",
    "pivot",
    "exec+exit",
    "cleanup",
];

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Ahead,
    All,
    AheadBare,
    Fork,
    Parity,
    ParityFork,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Ahead => "ahead",
            Variant::All => "all",
            Variant::AheadBare => "ahead-bare",
            Variant::Fork => "fork",
            Variant::Parity => "parity",
            Variant::ParityFork => "parity-fork",
        }
    }

    fn clone_flags(self) -> libc::c_int {
        match self {
            Variant::Ahead | Variant::AheadBare => libc::CLONE_NEWNS | libc::CLONE_NEWPID,
            Variant::All => {
                libc::CLONE_NEWNS
                    | libc::CLONE_NEWPID
                    | libc::CLONE_NEWNET
                    | libc::CLONE_NEWIPC
                    | libc::CLONE_NEWUTS
            }
            Variant::Fork | Variant::Parity | Variant::ParityFork => 0,
        }
    }
}

/// CLOCK_MONOTONIC in ns.
fn now() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// A page shared by the parent and the child across the fork-like clone.
struct Stamps(*mut u64);

impl Stamps {
    fn new() -> Stamps {
        // SAFETY: a fresh anonymous shared mapping of one page, unmapped never (the process
        // is short-lived).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        Stamps(p.cast())
    }

    fn set(&self, i: usize) {
        // SAFETY: i < 32, inside the page; a volatile write seen by the other process.
        unsafe { self.0.add(i).write_volatile(now()) }
    }

    fn get(&self, i: usize) -> u64 {
        // SAFETY: as in `set`.
        unsafe { self.0.add(i).read_volatile() }
    }

    fn clear(&self) {
        for i in 0..32 {
            // SAFETY: as in `set`.
            unsafe { self.0.add(i).write_volatile(0) }
        }
    }
}

/// A fork-like `clone` of this single-threaded process into the namespaces of `flags`
/// (no CLONE_VM, no new stack): 0 in the child, the child's pid in the parent.
fn fork_into(flags: libc::c_int) -> libc::c_long {
    // SAFETY: a fork-like clone (no CLONE_VM, no new stack) of this single-threaded process.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    assert!(pid >= 0, "clone: {}", std::io::Error::last_os_error());
    pid
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// The child: stamps 2..=6, then execs `/bin/true` (or exits 1 on a failed step).
fn child(variant: Variant, stamps: &Stamps, root: &CStr, options: &CStr) -> ! {
    stamps.set(2);
    if variant == Variant::Fork {
        for i in 3..=6 {
            stamps.set(i);
        }
    } else {
        // SAFETY: plain mount(2) calls with NUL-terminated strings that outlive them.
        unsafe {
            if libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                libc::_exit(1);
            }
            stamps.set(3);
            if libc::mount(
                c"overlay".as_ptr(),
                root.as_ptr(),
                c"overlay".as_ptr(),
                0,
                options.as_ptr().cast(),
            ) != 0
            {
                libc::_exit(2);
            }
            stamps.set(4);
            if libc::chdir(root.as_ptr()) != 0 {
                libc::_exit(3);
            }
            if variant != Variant::AheadBare
                && libc::mount(
                    c"proc".as_ptr(),
                    c"proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ) != 0
            {
                libc::_exit(4);
            }
            stamps.set(5);
            if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0
                || libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0
                || libc::chdir(c"/".as_ptr()) != 0
            {
                libc::_exit(5);
            }
            stamps.set(6);
        }
    }
    let argv = [c"true".as_ptr(), std::ptr::null()];
    // SAFETY: execv with a NUL-terminated argv of static strings.
    unsafe {
        libc::execv(c"/bin/true".as_ptr(), argv.as_ptr());
        libc::_exit(6)
    }
}

/// One iteration; the duration of each phase.
fn iteration(
    variant: Variant,
    stamps: &Stamps,
    base: &Path,
    lower: &Path,
    volatile: bool,
    n: u64,
) -> [Duration; 8] {
    stamps.clear();
    stamps.set(0);
    let dir = base.join(format!("i{n}"));
    let (upper, work, root) = (dir.join("u"), dir.join("w"), dir.join("root"));
    for d in [&upper, &work, &root] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let options = CString::new(format!(
        "lowerdir={},upperdir={},workdir={}{}",
        lower.display(),
        upper.display(),
        work.display(),
        if volatile { ",volatile" } else { "" }
    ))
    .expect("options");
    let root_c = cstr(&root);
    stamps.set(1);
    let pid = fork_into(variant.clone_flags());
    if pid == 0 {
        child(variant, stamps, &root_c, &options);
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    let waited = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    stamps.set(7);
    assert!(
        waited == pid as libc::pid_t && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{}: the child failed at step {}",
        variant.name(),
        libc::WEXITSTATUS(status)
    );
    std::fs::remove_dir_all(&dir).expect("remove the iteration's dirs");
    stamps.set(8);
    let mut phases = [Duration::ZERO; 8];
    for (i, phase) in phases.iter_mut().enumerate() {
        *phase = Duration::from_nanos(stamps.get(i + 1).saturating_sub(stamps.get(i)));
    }
    phases
}

/// Whether this kernel's overlayfs takes `volatile` (rbuild mounts with it when it does).
fn volatile_works(base: &Path, lower: &Path) -> bool {
    let dir = base.join("probe");
    let (upper, work, root) = (dir.join("u"), dir.join("w"), dir.join("root"));
    for d in [&upper, &work, &root] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let options = CString::new(format!(
        "lowerdir={},upperdir={},workdir={},volatile",
        lower.display(),
        upper.display(),
        work.display()
    ))
    .expect("options");
    let root_c = cstr(&root);
    // SAFETY: as in `iteration`.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWNS | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: mount(2) with NUL-terminated strings.
        let ok = unsafe {
            libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == 0
                && libc::mount(
                    c"overlay".as_ptr(),
                    root_c.as_ptr(),
                    c"overlay".as_ptr(),
                    0,
                    options.as_ptr().cast(),
                ) == 0
        };
        // SAFETY: _exit in the forked child.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    let _ = std::fs::remove_dir_all(&dir);
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

fn main() {
    if !common::can_run() {
        return;
    }
    let runs = env_number("RUNS", 200);
    let under = std::env::var_os("FLOOR_DIR").unwrap_or_else(|| "/var/tmp".into());
    let dir = tempfile::tempdir_in(&under).expect("tempdir");
    let lower: PathBuf = dir.path().join("lower");
    common::busybox_layer(&lower);
    std::fs::create_dir_all(lower.join("proc")).expect("mkdir proc");
    let base = dir.path().join("runs");
    std::fs::create_dir_all(&base).expect("mkdir runs");
    let volatile = volatile_works(&base, &lower);
    let parity = parity::Parity::prepare(dir.path(), &lower, volatile);
    let variants = [
        Variant::Ahead,
        Variant::All,
        Variant::AheadBare,
        Variant::Fork,
        Variant::Parity,
        Variant::ParityFork,
    ];
    let stamps = Stamps::new();
    if std::env::var_os("PARITY_SHOW").is_some() {
        parity.iteration(&stamps, &base, 0, parity::SHOW, Pid1::Exec);
    }
    let mut results: Vec<Vec<Vec<Duration>>> = vec![Vec::new(); variants.len()];
    let mut n = 0;
    for round in 0..runs + 5 {
        for (k, &v) in variants.iter().enumerate() {
            n += 1;
            let phases = match v {
                Variant::Parity => parity.iteration(&stamps, &base, n, c"true", Pid1::Exec),
                Variant::ParityFork => parity.iteration(&stamps, &base, n, c"true", Pid1::Fork),
                _ => iteration(v, &stamps, &base, &lower, volatile, n).to_vec(),
            };
            // The first rounds warm the caches (page cache, dentries, slabs).
            if round >= 5 {
                results[k].push(phases);
            }
        }
    }
    println!(
        "floor of a sandboxed `RUN true`: medians of {runs} iterations per variant, ms \
         (under {}, overlay {}volatile)",
        Path::new(&under).display(),
        if volatile { "" } else { "not " }
    );
    let (bare, with_parity) = results.split_at(4);
    print_table(&PHASES, 0..7, &variants[..4], bare);
    println!("feature-parity floor (`sh -c true`, 21 lowers, BuildKit's mounts, caps, seccomp):");
    print_table(
        &parity::PHASES,
        parity::TO_EXIT,
        &variants[4..],
        with_parity,
    );
}

/// One row per variant: the median of each phase, of the phases `to_exit` (what a run waits
/// for) and of all.
fn print_table(
    phases: &[&str],
    to_exit: std::ops::Range<usize>,
    variants: &[Variant],
    results: &[Vec<Vec<Duration>>],
) {
    print!("{:<12}", "variant");
    for p in phases {
        print!(" {p:>9}");
    }
    println!(" {:>9} {:>9}", "to exit", "total");
    for (v, runs) in variants.iter().zip(results) {
        print!("{:<12}", v.name());
        for i in 0..phases.len() {
            print!(" {:>9.3}", ms(stats(runs.iter().map(|p| p[i]).collect()).0));
        }
        let sum = |range: std::ops::Range<usize>| -> Vec<Duration> {
            runs.iter().map(|p| p[range.clone()].iter().sum()).collect()
        };
        let (to_exit, total) = (stats(sum(to_exit.clone())).0, stats(sum(0..phases.len())).0);
        println!(" {:>9.3} {:>9.3}", ms(to_exit), ms(total));
    }
}
