//! The sandbox zygote (one per init program and rbuild process) forks each run's init. Its own
//! test binary: these tests kill the zygote and an init, which must not disturb other runs.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{can_run, ok, wait_for, Fixture};

/// Pids of the processes whose parent is `parent` and whose command line has `arg`.
fn children_with_arg(parent: u32, arg: &str) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Field 4 (after the parenthesised name, which may hold spaces) is the parent pid.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent) && cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes())
        })
        .collect()
}

/// The tests kill this process's one zygote or an init: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// This test's turn (see [`SERIAL`]).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn zygotes() -> Vec<u32> {
    children_with_arg(std::process::id(), "zygote")
}

fn kill(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
}

fn wait_until(what: &str, done: impl FnMut() -> bool) {
    assert!(wait_for(20, done), "timed out waiting until {what}");
}

#[test]
fn a_killed_zygote_is_replaced() {
    if !can_run() {
        return;
    }
    let _serial = serial();
    let f = Fixture::new();
    ok(f.run("true"));
    let first = zygotes();
    assert_eq!(first.len(), 1, "one zygote for the init program: {first:?}");
    kill(first[0]);
    // Reaped only when rbuild next needs it: wait until it is a zombie or gone.
    wait_until("the zygote is dead", || {
        std::fs::read_to_string(format!("/proc/{}/stat", first[0]))
            .map_or(true, |s| s.contains(") Z "))
    });
    let f = Fixture::new();
    let log = ok(f.run("echo again"));
    assert_eq!(log.stdout(), "again\n");
    let second = zygotes();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first);
}

#[test]
fn an_init_killed_from_outside_says_how_it_ended() {
    if !can_run() {
        return;
    }
    let _serial = serial();
    let f = Fixture::new();
    std::thread::scope(|s| {
        let run = s.spawn(|| f.run("sleep 4719"));
        let mut init = None;
        wait_until("the run's init exists", || {
            init = zygotes()
                .into_iter()
                .flat_map(|z| children_with_arg(z, "zygote"))
                .next();
            init.is_some()
        });
        let init = init.expect("init");
        // Only once the command runs: the init is then past its setup.
        wait_until("sleep 4719 runs", || {
            std::fs::read_dir("/proc").is_ok_and(|rd| {
                rd.flatten().any(|e| {
                    std::fs::read(e.path().join("cmdline"))
                        .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"4719"))
                })
            })
        });
        kill(init);
        let (res, log) = run.join().expect("run thread");
        let err = res.expect_err("a killed init fails the run").to_string();
        assert!(
            err.contains("SIGKILL"),
            "the error says how the init ended: {err}; {}",
            log.stderr()
        );
    });
}

/// The namespaces the command of one run is in, as `readlink /proc/self/ns/*` shows them;
/// the run then lives on for `linger` seconds.
fn namespaces_of_a_run(network: rbuild_graph::NetworkMode, linger: &str) -> String {
    let f = Fixture::new();
    let log = ok(f.run_as(
        &format!(
            "for n in net ipc uts mnt pid; do readlink /proc/self/ns/$n; done; sleep {linger}"
        ),
        "",
        network,
    ));
    log.stdout()
}

fn host_namespace(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .expect("readlink")
        .display()
        .to_string()
}

const NAMES: [&str; 5] = ["net", "ipc", "uts", "mnt", "pid"];

#[test]
fn every_run_gets_namespaces_of_its_own() {
    if !can_run() {
        return;
    }
    let _serial = serial();
    // Spares are made ahead. Runs alive at the same time must be in different namespaces
    // (namespace numbers are reused once freed, so only live ones can be compared).
    let runs = three_at_once(|| namespaces_of_a_run(rbuild_graph::NetworkMode::None, "1"));
    let mut seen = std::collections::HashSet::new();
    for run in &runs {
        assert_eq!(run.lines().count(), NAMES.len(), "{run}");
        for (ns, name) in run.lines().zip(NAMES) {
            assert_ne!(ns, host_namespace(name), "a run shares the host's {name}");
            assert!(seen.insert(ns.to_string()), "{ns} was used by two runs");
        }
    }
    // With the host's network, only the network namespace is the host's.
    let host = namespaces_of_a_run(rbuild_graph::NetworkMode::Host, "0");
    for (ns, name) in host.lines().zip(NAMES) {
        if name == "net" {
            assert_eq!(ns, host_namespace(name));
        } else {
            assert_ne!(
                ns,
                host_namespace(name),
                "a host-network run shares the host's {name}"
            );
        }
    }
}

/// Runs the sleepers of a fresh marker and cancels the run, before it starts or once the
/// sleepers run; the run must fail promptly and leave nothing running.
fn cancelled_run_leaves_nothing(marker_base: u32, cancel_before: bool) {
    let _serial = serial();
    let f = Fixture::new();
    let marker = (marker_base + std::process::id() % 100_000).to_string();
    let cancel = rbuild_ports::CancelToken::new();
    if cancel_before {
        cancel.cancel();
    }
    let exec = rbuild_sandbox::NamespaceExecutor::new(
        common::init_exe(),
        rbuild_sandbox::detect_privileges(),
    );
    let start = Instant::now();
    let (res, _log) = std::thread::scope(|s| {
        if !cancel_before {
            s.spawn(|| {
                wait_until("the sleepers run", || common::sleeper_running(&marker));
                cancel.cancel();
            });
        }
        f.run_cancellable(&exec, &common::sleepers(&marker), &cancel)
    });
    assert!(res.is_err(), "a cancelled run fails");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "returned only after {took:?}"
    );
    wait_until("the sleepers are gone", || {
        !common::sleeper_running(&marker)
    });
}

#[test]
fn cancelling_a_run_kills_its_sandbox() {
    if can_run() {
        cancelled_run_leaves_nothing(800_000, false);
    }
}

#[test]
fn a_run_cancelled_before_it_starts_is_killed_at_once() {
    if can_run() {
        cancelled_run_leaves_nothing(900_000, true);
    }
}

/// The network namespace of a run with the default network and whether `tap0` has
/// slirp4netns's address in it; the run then lives on for `linger` seconds.
fn network_of_a_default_run(linger: &str) -> (String, bool) {
    let f = Fixture::new();
    let log = ok(f.run_as(
        &format!(
            "readlink /proc/self/ns/net; ip -4 -o addr show tap0 | grep -c 10.0.2.100; \
             sleep {linger}"
        ),
        "",
        rbuild_graph::NetworkMode::Default,
    ));
    let out = log.stdout();
    let mut lines = out.lines();
    let ns = lines.next().unwrap_or_default().to_string();
    (ns, lines.next() == Some("1"))
}

#[test]
fn default_network_runs_never_share_a_networked_spare() {
    if !can_run() || rbuild_test_support::require_tool("slirp4netns").is_none() {
        return;
    }
    let _serial = serial();
    // The first run has the zygote make a networked spare; the pause lets it get ready.
    assert!(network_of_a_default_run("0.3").1, "tap0 in the first run");
    // Runs alive at the same time: one takes the spare, the others attach slirp4netns
    // themselves (and each has the next spare made); every one has tap0, none another's
    // namespace.
    let runs = three_at_once(|| network_of_a_default_run("1"));
    let mut seen = std::collections::HashSet::new();
    for (ns, tap) in &runs {
        assert!(tap, "tap0 in every run: {runs:?}");
        assert_ne!(ns, &host_namespace("net"));
        assert!(seen.insert(ns.clone()), "{ns} was used by two runs");
    }
    // An isolated run right after never gets a networked spare: lo alone.
    let f = Fixture::new();
    let log = ok(f.run_as(
        "grep -c : /proc/net/dev; grep -o 'lo:' /proc/net/dev",
        "",
        rbuild_graph::NetworkMode::None,
    ));
    assert_eq!(log.stdout(), "1\nlo:\n");
}

/// What `run` gives in three threads at the same time.
fn three_at_once<T: Send>(run: impl Fn() -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..3).map(|_| s.spawn(&run)).collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("run"))
            .collect()
    })
}
