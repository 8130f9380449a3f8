//! `--explain-cache` reasons, cancellation of running work when a vertex fails, and full step
//! logs on disk — with fake ports (no root, no network).

mod common;

use std::sync::Arc;

use rbuild_cache::Store;
use rbuild_context::BuildContext;
use rbuild_graph::{ExecOp, Graph, ImageConfig, Op, VertexId};
use rbuild_solver::events::Event;
use rbuild_solver::explain::MissReason;
use rbuild_solver::{SolveError, Solver, VertexError};
use rbuild_test_support::fakes::{
    busybox_op, context_op, copy_op, exec_op, vertex, FakeExecutor, FakeImages,
};
use rbuild_types::Digest;

fn exec(args: &[&str], env: &[&str]) -> Op {
    Op::Exec(ExecOp {
        platform: rbuild_types::Platform::host(),
        env: env.iter().map(|s| s.to_string()).collect(),
        ..exec_op(args)
    })
}

/// FROM busybox; COPY conf/ /conf/; RUN print 1 (with env)
fn graph(env: &[&str]) -> Graph {
    Graph {
        vertices: vec![
            vertex(
                busybox_op(),
                &[],
                "[1/3] FROM docker.io/library/busybox:latest",
            ),
            vertex(context_op(), &[], "context"),
            vertex(
                copy_op(1, "conf", "/conf/"),
                &[0, 1],
                "[2/3] COPY conf /conf/",
            ),
            vertex(exec(&["print", "1"], env), &[2], "[3/3] RUN print 1"),
        ],
        target: VertexId(3),
        image: ImageConfig::default(),
    }
}

struct World {
    _dir: tempfile::TempDir,
    ctx: std::path::PathBuf,
    store: Arc<Store>,
    /// One image, whose manifest digest a test can change.
    images: Arc<FakeImages>,
    exec: Arc<FakeExecutor>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(ctx.join("conf")).unwrap();
        std::fs::write(ctx.join("conf/a.txt"), "a1").unwrap();
        std::fs::write(ctx.join("conf/b.txt"), "b").unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        let images = Arc::new(FakeImages::new(Arc::clone(&store)));
        images.set_manifest(Digest::of(b"manifest 1"));
        World {
            _dir: dir,
            ctx,
            store,
            images,
            exec: Arc::new(FakeExecutor::default()),
        }
    }

    /// Solves `g`, which must succeed; the events.
    fn solved(&self, g: Graph, explain: bool) -> Vec<Event> {
        let (r, events) = self.solve(g, explain);
        r.unwrap();
        events
    }

    fn solve(
        &self,
        g: Graph,
        explain: bool,
    ) -> (Result<rbuild_solver::VertexResult, SolveError>, Vec<Event>) {
        let ctx = Arc::new(BuildContext::from_dir(&self.ctx, None).unwrap());
        let solver = Solver::new(
            Arc::clone(&self.store),
            self.exec.clone(),
            self.images.clone(),
            Arc::new(rbuild_test_support::fakes::NoRemote),
            rbuild_test_support::privileges(),
        )
        .with_context("context", ctx)
        .with_scope("test scope")
        .with_explain_cache(explain)
        .with_jobs(4);
        common::solve(solver, g)
    }
}

/// The reasons given per step name.
fn misses(events: &[Event]) -> Vec<(String, Vec<MissReason>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::CacheMiss { name, reasons, .. } => Some((name.clone(), reasons.clone())),
            _ => None,
        })
        .collect()
}

/// The reason a RUN misses when build arg `A` changed from `old` to `new`.
fn a_changed(old: &str, new: &str) -> Vec<MissReason> {
    vec![MissReason::Env {
        name: "A".into(),
        old: Some(old.into()),
        new: Some(new.into()),
    }]
}

fn reasons_of(events: &[Event], step: &str) -> Vec<MissReason> {
    misses(events)
        .into_iter()
        .find(|(n, _)| n == step)
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("no CacheMiss for {step}: {events:?}"))
}

#[test]
fn explains_each_kind_of_miss() {
    let w = World::new();
    let events = w.solved(graph(&["A=1"]), true);
    assert_eq!(
        reasons_of(&events, "[3/3] RUN print 1"),
        vec![MissReason::FirstRun]
    );

    // Unchanged: all cached, nothing to explain.
    let events = w.solved(graph(&["A=1"]), true);
    assert!(misses(&events).is_empty(), "{events:?}");

    // An ARG/ENV value.
    let events = w.solved(graph(&["A=2"]), true);
    assert_eq!(
        reasons_of(&events, "[3/3] RUN print 1"),
        a_changed("1", "2")
    );

    // A file the COPY reads: named with old and new digests; the RUN after it names its input.
    std::fs::write(w.ctx.join("conf/a.txt"), "a2").unwrap();
    let events = w.solved(graph(&["A=2"]), true);
    let copy = reasons_of(&events, "[2/3] COPY conf /conf/");
    assert_eq!(copy.len(), 1, "{copy:?}");
    match &copy[0] {
        MissReason::File {
            path,
            old: Some(old),
            new: Some(new),
        } => {
            assert_eq!(path, "conf/a.txt");
            assert!(old.contains(&Digest::of(b"a1").to_string()), "{old}");
            assert!(new.contains(&Digest::of(b"a2").to_string()), "{new}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        reasons_of(&events, "[3/3] RUN print 1"),
        vec![MissReason::Input {
            step: "[2/3] COPY conf /conf/".into()
        }]
    );

    // The base image digest.
    w.images.set_manifest(Digest::of(b"manifest 2"));
    let events = w.solved(graph(&["A=2"]), true);
    assert_eq!(
        reasons_of(&events, "[1/3] FROM docker.io/library/busybox:latest"),
        vec![MissReason::BaseImage {
            reference: "docker.io/library/busybox:latest".into(),
            old: Digest::of(b"manifest 1"),
            new: Digest::of(b"manifest 2"),
        }]
    );

    // The instruction text (command) of a RUN.
    let mut g = graph(&["A=2"]);
    g.vertices[3].op = exec(&["print", "2"], &["A=2"]);
    g.vertices[3].name = "[3/3] RUN print 2".into();
    let events = w.solved(g, true);
    assert_eq!(
        reasons_of(&events, "[3/3] RUN print 2"),
        vec![MissReason::Command {
            old: "print 1".into(),
            new: "print 2".into()
        }]
    );

    // Without --explain-cache no CacheMiss events are emitted (but inputs are still recorded).
    let events = w.solved(graph(&["A=3"]), false);
    assert!(misses(&events).is_empty());
    let events = w.solved(graph(&["A=4"]), true);
    assert_eq!(
        reasons_of(&events, "[3/3] RUN print 1"),
        a_changed("3", "4")
    );
}

#[test]
fn explains_no_cache_and_a_pruned_result() {
    let w = World::new();
    w.solve(graph(&[]), false).0.unwrap();
    let mut g = graph(&[]);
    g.vertices[3].ignore_cache = true;
    let events = w.solved(g, true);
    assert_eq!(
        reasons_of(&events, "[3/3] RUN print 1"),
        vec![MissReason::NoCache]
    );
    w.store
        .gc()
        .prune(&rbuild_cache::PruneOptions::default())
        .unwrap();
    let events = w.solved(graph(&[]), true);
    assert_eq!(
        reasons_of(&events, "[3/3] RUN print 1"),
        vec![MissReason::ResultGone]
    );
}

#[test]
fn a_failure_cancels_running_steps_and_leaves_nothing_half_written() {
    let w = World::new();
    // Two independent branches on scratch: one blocks until cancelled, the other fails.
    let g = Graph {
        vertices: vec![
            vertex(Op::Scratch, &[], "scratch"),
            vertex(exec(&["block"], &[]), &[0], "[slow 1/1] RUN block"),
            vertex(
                exec(&["fail", "3", "about to fail"], &[]),
                &[0],
                "[bad 1/1] RUN fail 3",
            ),
            vertex(
                copy_op(1, "/", "/"),
                &[2, 1],
                "[final 1/1] COPY --from=slow / /",
            ),
        ],
        target: VertexId(3),
        image: ImageConfig::default(),
    };
    let (r, events) = w.solve(g, false);
    match r {
        Err(SolveError::Vertex {
            name,
            source: VertexError::Exec { .. },
            ..
        }) => assert_eq!(name, "[bad 1/1] RUN fail 3"),
        other => panic!("unexpected {other:?}"),
    }
    let canceled: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::Canceled { vertex, .. } => Some(*vertex),
            _ => None,
        })
        .collect();
    assert_eq!(canceled, vec![1], "{events:?}");
    let tmp: Vec<_> = std::fs::read_dir(w.store.root().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "staging left behind: {tmp:?}");
    assert!(w.store.index().all().unwrap().is_empty());
}

#[test]
fn every_line_of_a_failed_step_is_in_its_log_file() {
    let w = World::new();
    let g = Graph {
        vertices: vec![
            vertex(Op::Scratch, &[], "scratch"),
            vertex(exec(&["print", "500"], &[]), &[0], "[1/2] RUN print 500"),
            vertex(
                exec(&["fail", "1", "about to fail"], &[]),
                &[1],
                "[2/2] RUN fail 1",
            ),
        ],
        target: VertexId(2),
        image: ImageConfig::default(),
    };
    let (r, _) = w.solve(g, false);
    let Err(SolveError::Vertex {
        log_path: Some(path),
        log_tail,
        ..
    }) = r
    else {
        panic!("expected a failure with a log path: {r:?}");
    };
    assert!(path.starts_with(w.store.logs().dir()), "{}", path.display());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "about to fail\n");
    assert_eq!(log_tail, vec!["about to fail".to_string()]);
    // The step before it printed 500 lines; all of them are in its own log file.
    let dir = path.parent().unwrap();
    let printed = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("print-500"))
        .expect("log of the print step");
    let text = std::fs::read_to_string(printed).unwrap();
    assert_eq!(text.lines().count(), 500);
    assert!(text.ends_with("line 499\n"));
}

#[test]
fn a_build_that_prints_nothing_keeps_no_log_directory() {
    let w = World::new();
    w.solve(graph(&[]), false).0.unwrap();
    assert_eq!(w.store.logs().list().unwrap().len(), 1);
    // All cached: nothing printed, no new directory.
    w.solve(graph(&[]), false).0.unwrap();
    assert_eq!(w.store.logs().list().unwrap().len(), 1);
}
