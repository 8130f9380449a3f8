//! Benchmark of issues #3/#5: what `RUN --mount`s add to `RUN true`, against `runc run` of a
//! bundle with the equivalent mounts, measured in the same run.
//!
//! Variants (interleaved, so load from other processes hits every variant alike):
//! - built-in executor, `RUN true` without mounts and with five mounts: a read-only view of
//!   two layers, a writable view of them, a tmpfs, a secret file and a host (cache) dir;
//! - the runc adapter, the same two;
//! - peer: `runc run` of a bundle over the same busybox layer (read-only root, `runc spec`'s
//!   defaults), without mounts and with five equivalent spec mounts (read-only binds of a
//!   layer dir for both views, a tmpfs, a read-only bind of a file, a bind of a dir). The peer
//!   makes no overlay and records no layer, so the comparison favours it.
//!
//! Run: `cargo bench -p rbuild-sandbox --bench run_mounts` (root, busybox-static, overlayfs;
//! `/usr/sbin/runc` for the peers). `RUNS=N` sets the iterations per variant (default 30).
//! Prints the median, p10 and p90 of each variant, what the mounts add (difference of the
//! medians) and the ratios of the medians.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rbuild_graph::ExecOp;
use rbuild_ports::{ExecRequest, Executor, MountSource, ResolvedMount, SecretFile};
use rbuild_sandbox::{NamespaceExecutor, RuncExecutor};

#[path = "../tests/common/mod.rs"]
mod common;

mod peer;

use peer::{env_number, ms, runc_bundle, runc_run, stats, Discard, RUNC};

/// One `RUN true` with `mounts` on `exec`, into fresh upper and work dirs under `dir`.
fn run_once(
    exec: &dyn Executor,
    layers: &[PathBuf],
    mounts: &[ResolvedMount],
    dir: &Path,
    n: u64,
) -> Duration {
    let op = ExecOp {
        platform: rbuild_types::Platform::host(),
        env: vec!["PATH=/bin".into()],
        ..rbuild_test_support::fakes::exec_op(&["true"])
    };
    let upper = dir.join(format!("upper-{n}"));
    let work = dir.join(format!("work-{n}"));
    std::fs::create_dir(&upper).expect("mkdir upper");
    std::fs::create_dir(&work).expect("mkdir work");
    let cancel = rbuild_ports::CancelToken::new();
    let start = Instant::now();
    exec.run(ExecRequest {
        op: &op,
        layers,
        upper: &upper,
        work: &work,
        mounts,
        log: &Discard,
        cancel: &cancel,
    })
    .expect("RUN true");
    let took = start.elapsed();
    let _ = std::fs::remove_dir_all(&upper);
    let _ = std::fs::remove_dir_all(&work);
    took
}

fn report(name: &str, v: Vec<Duration>) -> Duration {
    let (m, p10, p90) = stats(v);
    println!(
        "{name}: median {:.2} ms (p10 {:.2}, p90 {:.2})",
        ms(m),
        ms(p10),
        ms(p90)
    );
    m
}

fn main() {
    if !common::can_run() {
        return;
    }
    let runs: u64 = env_number("RUNS", 30);
    // Under /var/tmp: a disk filesystem, like a real store (not a tmpfs /tmp).
    let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let fixture = common::Fixture::new_in(dir.path());
    // The mounted layers: the busybox layer and a small one on top.
    let top = dir.path().join("top");
    std::fs::create_dir_all(top.join("src")).expect("mkdir");
    for i in 0..100 {
        std::fs::write(top.join("src").join(format!("f{i}")), "x").expect("write");
    }
    let layers = vec![fixture.layers[0].clone(), top.clone()];
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).expect("mkdir cache");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "s3cr3t").expect("write secret");
    let mounts = vec![
        ResolvedMount {
            target: "/src".into(),
            readonly: true,
            source: MountSource::Layers {
                layers: layers.clone(),
                path: "/".into(),
            },
        },
        ResolvedMount {
            target: "/rw".into(),
            readonly: false,
            source: MountSource::Layers {
                layers: layers.clone(),
                path: "/src".into(),
            },
        },
        ResolvedMount {
            target: "/tmp/t".into(),
            readonly: false,
            source: MountSource::Tmpfs { size: None },
        },
        ResolvedMount {
            target: "/run/secrets/s".into(),
            readonly: true,
            source: MountSource::File(SecretFile {
                data: b"s3cr3t".to_vec(),
                mode: 0o400,
                uid: 0,
                gid: 0,
            }),
        },
        ResolvedMount {
            target: "/root/.cache".into(),
            readonly: false,
            source: MountSource::Dir(cache.clone()),
        },
    ];
    let init = PathBuf::from(env!("CARGO_BIN_EXE_rbuild-sandbox-init"));
    let builtin = NamespaceExecutor::new(init.clone(), rbuild_sandbox::detect_privileges());
    let have_runc = Path::new(RUNC).exists();
    if !have_runc {
        eprintln!("SKIPPED: the runc variants because {RUNC} is not installed");
    }
    let adapter = RuncExecutor::new(
        PathBuf::from(RUNC),
        init,
        rbuild_sandbox::detect_privileges(),
    );
    // The peer's root is read-only and lacks the targets: give it a root that has them.
    let peer_root = dir.path().join("peer-root");
    common::busybox_layer(&peer_root);
    for d in ["src", "rw", "tmp/t", "run/secrets", "root/.cache"] {
        std::fs::create_dir_all(peer_root.join(d)).expect("mkdir target");
    }
    std::fs::write(peer_root.join("run/secrets/s"), "").expect("secret target");
    let bind = |dest: &str, src: &Path, ro: bool| {
        let mut options = vec!["rbind"];
        if ro {
            options.push("ro");
        }
        serde_json::json!({"destination": dest, "type": "bind", "source": src, "options": options})
    };
    let peer_mounts = serde_json::json!([
        bind("/src", &top, true),
        bind("/rw", &top.join("src"), true),
        {"destination": "/tmp/t", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
        bind("/run/secrets/s", &secret_file, true),
        bind("/root/.cache", &cache, false),
    ]);
    let state = dir.path().join("runc-state");
    let bundles = have_runc.then(|| {
        (
            runc_bundle(dir.path(), "bare", &peer_root, serde_json::json!([])),
            runc_bundle(dir.path(), "mounted", &peer_root, peer_mounts),
        )
    });
    let work = dir.path().join("runs");
    std::fs::create_dir(&work).expect("mkdir runs");

    let mut n = 0u64;
    let mut next = || {
        n += 1;
        n
    };
    // Warm-up.
    for _ in 0..3 {
        run_once(&builtin, &fixture.layers, &mounts, &work, next());
        if let Some((bare, mounted)) = &bundles {
            runc_run(bare, &state, "rbuild-bench-m", next());
            runc_run(mounted, &state, "rbuild-bench-m", next());
            run_once(&adapter, &fixture.layers, &mounts, &work, next());
        }
    }
    let mut v: [Vec<Duration>; 6] = Default::default();
    for _ in 0..runs {
        v[0].push(run_once(&builtin, &fixture.layers, &[], &work, next()));
        v[1].push(run_once(&builtin, &fixture.layers, &mounts, &work, next()));
        if let Some((bare, mounted)) = &bundles {
            v[2].push(run_once(&adapter, &fixture.layers, &[], &work, next()));
            v[3].push(run_once(&adapter, &fixture.layers, &mounts, &work, next()));
            v[4].push(runc_run(bare, &state, "rbuild-bench-m", next()));
            v[5].push(runc_run(mounted, &state, "rbuild-bench-m", next()));
        }
    }
    let [b0, b1, a0, a1, p0, p1] = v;
    let ours_bare = report("built-in, RUN true, no mounts", b0);
    let ours = report("built-in, RUN true, 5 mounts", b1);
    println!(
        "built-in: the 5 mounts add {:.2} ms",
        ms(ours.saturating_sub(ours_bare))
    );
    if bundles.is_some() {
        let ad0 = report("runc adapter, RUN true, no mounts", a0);
        let ad1 = report("runc adapter, RUN true, 5 mounts", a1);
        let peer_bare = report("peer runc run, no mounts", p0);
        let peer = report("peer runc run, 5 equivalent mounts", p1);
        println!(
            "runc adapter: the 5 mounts add {:.2} ms; peer runc run: they add {:.2} ms",
            ms(ad1.saturating_sub(ad0)),
            ms(peer.saturating_sub(peer_bare))
        );
        println!(
            "ratio peer runc run / built-in with 5 mounts (medians): {:.1}x",
            peer.as_secs_f64() / ours.as_secs_f64()
        );
    }
}
