//! Benchmark of issue #5: the overhead of `RUN true`, from the solver's request to the recorded
//! result, against `runc run` of an equivalent bundle measured in the same run.
//!
//! "Request to result" is what the solver does for an Exec vertex: `Snapshots::prepare`,
//! `Executor::run`, `Snapshots::commit` (the upper dir becomes the layer, journaled). The
//! store makes its snapshots durable with one `syncfs` per build (`Store::sync`, when the
//! handle goes); the sync after all the runs is timed and printed apart, and so is a
//! single-RUN build's worst case (journal creation, commit and sync for one request). The peer is
//! `runc run` of a bundle whose rootfs is the same busybox layer, with `runc spec`'s default
//! config (read-only root, namespaces incl. network, no terminal) running `true`; it makes no
//! overlay and records no layer, so the comparison favours runc.
//!
//! Run: `cargo bench -p rbuild-sandbox --bench run_true` (root, busybox-static, overlayfs;
//! `/usr/sbin/runc` for the peer). `RUNS=N` sets the iterations per variant (default 40);
//! `PEERS=0` runs only the built-in executor (to profile it); `BLOCK=k` interleaves blocks of k
//! runs per variant (default 1); `ADAPTER=0` leaves out the runc adapter. With
//! `RBUILD_SANDBOX_TRACE=<file>` the executor and init append per-phase timestamps to the file.
//! Prints the median, p10 and p90 of each variant and the ratio of the medians.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rbuild_cache::{SnapshotId, Store};
use rbuild_graph::ExecOp;
use rbuild_ports::{ExecRequest, Executor};
use rbuild_sandbox::{NamespaceExecutor, RuncExecutor};
use rbuild_types::Digest;

#[path = "../tests/common/mod.rs"]
mod common;

mod peer;

use peer::{env_number, ms, runc_bundle, runc_run, stats, Discard, RUNC};

/// Time spent in each phase of one request: prepare, run, commit.
type Phases = [Duration; 3];

/// One `RUN true` the way the solver does it: prepare, run, commit. Returns the time taken by
/// each phase.
fn request_to_result(store: &Store, exec: &dyn Executor, layers: &[PathBuf], n: u64) -> Phases {
    let op = ExecOp {
        platform: rbuild_types::Platform::host(),
        env: vec!["PATH=/bin".into()],
        ..rbuild_test_support::fakes::exec_op(&["true"])
    };
    let id = SnapshotId(Digest::of(
        format!("bench-{}-{n}", std::process::id()).as_bytes(),
    ));
    let cancel = rbuild_ports::CancelToken::new();
    let start = Instant::now();
    let prepared = store.snapshots().prepare().expect("prepare snapshot");
    let t1 = Instant::now();
    exec.run(ExecRequest {
        op: &op,
        layers,
        upper: &prepared.upper,
        work: &prepared.work,
        mounts: &[],
        log: &Discard,
        cancel: &cancel,
    })
    .expect("RUN true");
    let t2 = Instant::now();
    store
        .snapshots()
        .commit(prepared, &id)
        .expect("commit snapshot");
    [t1 - start, t2 - t1, t2.elapsed()]
}

/// Request to recorded layer.
fn total(p: &Phases) -> Duration {
    p.iter().sum()
}

/// Prints the median of the whole request and of each phase.
fn report(name: &str, runs: &[Phases]) -> Duration {
    let (m, p10, p90) = stats(runs.iter().map(total).collect());
    let phase = |i: usize| ms(stats(runs.iter().map(|p| p[i]).collect()).0);
    println!(
        "{name}: median {:.2} ms (p10 {:.2}, p90 {:.2}; phases: prepare {:.2}, run {:.2}, commit {:.2}), {} runs",
        ms(m),
        ms(p10),
        ms(p90),
        phase(0),
        phase(1),
        phase(2),
        runs.len()
    );
    m
}

fn main() {
    if !common::can_run() {
        return;
    }
    let runs: u64 = env_number("RUNS", 40);
    // Under /var/tmp: a disk filesystem, like a real store (not a tmpfs /tmp).
    let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let store = Store::open(&dir.path().join("store")).expect("open store");
    let fixture = common::Fixture::new_in(dir.path());
    let builtin = NamespaceExecutor::new(
        PathBuf::from(env!("CARGO_BIN_EXE_rbuild-sandbox-init")),
        rbuild_sandbox::detect_privileges(),
    );
    // PEERS=0 runs only the built-in executor (for profiling it with perf/strace).
    let peers = std::env::var("PEERS").map_or(true, |v| v != "0");
    let have_runc = peers && Path::new(RUNC).exists();
    if peers && !have_runc {
        eprintln!("SKIPPED: the runc peer because {RUNC} is not installed");
    }
    let runc_exec = RuncExecutor::new(
        PathBuf::from(RUNC),
        PathBuf::from(env!("CARGO_BIN_EXE_rbuild-sandbox-init")),
        rbuild_sandbox::detect_privileges(),
    );
    let bundle = have_runc.then(|| {
        runc_bundle(
            dir.path(),
            "bundle",
            &fixture.layers[0],
            serde_json::json!([]),
        )
    });
    let state = dir.path().join("runc-state");

    // Warm up caches (page cache, dentries) for every variant.
    for n in 0..3 {
        request_to_result(&store, &builtin, &fixture.layers, 1_000_000 + n);
        if let Some(b) = &bundle {
            runc_run(b, &state, "rbuild-bench", 1_000_000 + n);
        }
    }
    let (mut ours, mut peer, mut adapter) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so load from other processes hits every variant alike. BLOCK=k interleaves
    // blocks of k runs of each variant instead of single runs: right after a runc run, process
    // creation on this kernel waits for runc's cgroup work (a fork took 4 ms instead of 0.5 ms
    // in RBUILD_SANDBOX_TRACE timings), which single-run interleaving charges to the next
    // variant. ADAPTER=0 leaves the runc adapter out.
    let block: u64 = std::env::var("BLOCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&k| k > 0)
        .unwrap_or(1);
    let with_adapter = std::env::var("ADAPTER").map_or(true, |v| v != "0");
    let mut start = 0;
    while start < runs {
        let end = (start + block).min(runs);
        for n in start..end {
            ours.push(request_to_result(&store, &builtin, &fixture.layers, n));
        }
        if let Some(b) = &bundle {
            for n in start..end {
                peer.push(runc_run(b, &state, "rbuild-bench", n));
            }
            for n in (start..end).filter(|_| with_adapter) {
                adapter.push(request_to_result(
                    &store,
                    &runc_exec,
                    &fixture.layers,
                    2_000_000 + n,
                ));
            }
        }
        start = end;
    }
    let m = report(
        "RUN true, built-in executor, request to recorded layer",
        &ours,
    );
    let t = Instant::now();
    store.sync().expect("sync store");
    println!(
        "the store's one sync after all runs (once per build): {:.2} ms",
        ms(t.elapsed())
    );
    // A build of a single RUN: the journal is created, and the sync follows the commit.
    let mut single = Vec::new();
    for n in 0..runs.min(10) {
        let t = Instant::now();
        request_to_result(&store, &builtin, &fixture.layers, 3_000_000 + n);
        store.sync().expect("sync store");
        single.push(t.elapsed());
    }
    let single = stats(single).0;
    println!(
        "a single-RUN build's request, journal and sync included: median {:.2} ms",
        ms(single)
    );
    if bundle.is_some() {
        let (rm, r10, r90) = stats(peer);
        println!(
            "runc run of an equivalent bundle (peer): median {:.2} ms (p10 {:.2}, p90 {:.2})",
            ms(rm),
            ms(r10),
            ms(r90)
        );
        if !adapter.is_empty() {
            report(
                "RUN true, --runtime=runc adapter, request to layer",
                &adapter,
            );
        }
        println!(
            "ratio runc run / built-in (medians): {:.1}x; single-RUN build: {:.1}x",
            rm.as_secs_f64() / m.as_secs_f64(),
            rm.as_secs_f64() / single.as_secs_f64()
        );
    }
}
