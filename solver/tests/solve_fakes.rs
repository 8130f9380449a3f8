//! The solver with fake ports: no root, no network (DESIGN invariant 3).

mod common;

use std::path::Path;
use std::sync::Arc;

use rbuild_cache::{SnapshotId, Store};
use rbuild_context::BuildContext;
use rbuild_graph::{Graph, ImageConfig, Op, VertexId};
use rbuild_solver::events::Event;
use rbuild_solver::ports::ExecError;
use rbuild_solver::{SolveError, Solver, VertexError};
use rbuild_test_support::fakes::{
    busybox_op, context_op, copy_op, exec_op, vertex, FakeExecutor, FakeImages,
};

fn exec(args: &[&str]) -> Op {
    Op::Exec(exec_op(args))
}

/// image → RUN write /a → COPY ctx file.txt /file.txt ; scratch → RUN write /b ; final COPY --from
fn sample_graph() -> Graph {
    Graph {
        vertices: vec![
            vertex(busybox_op(), &[], "[1/3] FROM busybox"),
            vertex(context_op(), &[], "context"),
            vertex(exec(&["write", "/a", "A"]), &[0], "[2/3] RUN write /a"),
            vertex(
                copy_op(1, "file.txt", "/file.txt"),
                &[2, 1],
                "[3/3] COPY file.txt /file.txt",
            ),
            vertex(Op::Scratch, &[], "scratch"),
            vertex(
                exec(&["write", "/b", "B"]),
                &[4],
                "[other 1/1] RUN write /b",
            ),
            vertex(
                copy_op(1, "/b", "/from-other/"),
                &[3, 5],
                "[4/4] COPY --from=other /b /from-other/",
            ),
        ],
        target: VertexId(6),
        image: ImageConfig::default(),
    }
}

struct World {
    _dir: tempfile::TempDir,
    ctx_dir: std::path::PathBuf,
    store: Arc<Store>,
    exec: Arc<FakeExecutor>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let ctx_dir = dir.path().join("ctx");
        std::fs::create_dir(&ctx_dir).unwrap();
        std::fs::write(ctx_dir.join("file.txt"), "v1").unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        World {
            _dir: dir,
            ctx_dir,
            store,
            exec: Arc::new(FakeExecutor::echoing()),
        }
    }

    fn solve(&self, graph: Graph) -> (Result<rbuild_solver::VertexResult, SolveError>, Vec<Event>) {
        let ctx = Arc::new(BuildContext::from_dir(&self.ctx_dir, None).unwrap());
        // One image whose single layer holds `/etc/os-release`, naming it.
        let images = FakeImages::new(Arc::clone(&self.store)).with_layer(|image, root| {
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(root.join("etc/os-release"), image.reference.to_string()).unwrap();
        });
        let solver = Solver::new(
            Arc::clone(&self.store),
            self.exec.clone(),
            Arc::new(images),
            Arc::new(rbuild_test_support::fakes::NoRemote),
            rbuild_test_support::privileges(),
        )
        .with_context("context", ctx);
        common::solve(solver, graph)
    }

    fn read(&self, layers: &[SnapshotId], path: &str) -> Option<String> {
        let paths = layers
            .iter()
            .map(|l| self.store.snapshots().path(l).unwrap())
            .collect();
        let view = rbuild_cache::merged::MergedView::new(paths);
        let e = view.lookup(Path::new(path)).unwrap()?;
        Some(std::fs::read_to_string(e.host_path).unwrap())
    }
}

#[test]
fn solves_builds_layers_and_reuses_the_cache() {
    let w = World::new();
    let (result, events) = w.solve(sample_graph());
    let result = result.unwrap();
    assert_eq!(result.layers.len(), 4, "base + RUN + COPY + COPY --from");
    assert_eq!(
        w.read(&result.layers, "/etc/os-release").as_deref(),
        Some("docker.io/library/busybox:latest")
    );
    assert_eq!(w.read(&result.layers, "/a").as_deref(), Some("A"));
    assert_eq!(w.read(&result.layers, "/file.txt").as_deref(), Some("v1"));
    assert_eq!(
        w.read(&result.layers, "/from-other/b").as_deref(),
        Some("B")
    );
    assert_eq!(w.exec.count(), 2);
    assert!(common::cached_names(&events).is_empty());
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Log { data, .. } if data.starts_with(b"running write"))));

    // Unchanged: everything cached, nothing runs.
    let (again, events) = w.solve(sample_graph());
    assert_eq!(again.unwrap(), result);
    assert_eq!(w.exec.count(), 2);
    assert_eq!(common::cached_names(&events).len(), 5, "{events:?}");

    // A changed context file re-runs exactly the COPY that reads it and what depends on it.
    std::fs::write(w.ctx_dir.join("file.txt"), "v2").unwrap();
    let (changed, events) = w.solve(sample_graph());
    let changed = changed.unwrap();
    assert_eq!(w.read(&changed.layers, "/file.txt").as_deref(), Some("v2"));
    let cached = common::cached_names(&events);
    assert!(
        cached.contains(&"[2/3] RUN write /a".to_string()),
        "{cached:?}"
    );
    assert!(
        cached.contains(&"[other 1/1] RUN write /b".to_string()),
        "{cached:?}"
    );
    assert!(!cached.iter().any(|n| n.contains("COPY")), "{cached:?}");
    assert_eq!(w.exec.count(), 2);
}

#[test]
fn identical_vertices_run_once() {
    let w = World::new();
    let g = Graph {
        vertices: vec![
            vertex(Op::Scratch, &[], "scratch"),
            vertex(exec(&["write", "/x", "X"]), &[0], "[a 1/1] RUN write /x"),
            vertex(exec(&["write", "/x", "X"]), &[0], "[b 1/1] RUN write /x"),
            vertex(
                copy_op(1, "/x", "/y"),
                &[2, 1],
                "[c 1/1] COPY --from=a /x /y",
            ),
        ],
        target: VertexId(3),
        image: ImageConfig::default(),
    };
    let (result, _) = w.solve(g);
    let result = result.unwrap();
    assert_eq!(w.exec.count(), 1);
    assert_eq!(w.read(&result.layers, "/y").as_deref(), Some("X"));
}

#[test]
fn a_failure_names_the_vertex_and_keeps_the_log_tail() {
    let w = World::new();
    let g = Graph {
        vertices: vec![
            vertex(Op::Scratch, &[], "scratch"),
            vertex(exec(&["fail", "7"]), &[0], "[1/1] RUN fail 7"),
        ],
        target: VertexId(1),
        image: ImageConfig::default(),
    };
    let (result, events) = w.solve(g);
    match result {
        Err(SolveError::Vertex {
            name,
            log_tail,
            source:
                VertexError::Exec {
                    source: ExecError::Exit(7),
                    ..
                },
            ..
        }) => {
            assert_eq!(name, "[1/1] RUN fail 7");
            assert_eq!(log_tail, vec!["running fail 7".to_string()]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(events.iter().any(|e| matches!(e, Event::Failed { .. })));
    // Nothing half-written: the failed step left no snapshot and no staging directory.
    let tmp = w.store.root().join("tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn missing_context_file_is_a_clear_error() {
    let w = World::new();
    let g = Graph {
        vertices: vec![
            vertex(Op::Scratch, &[], "scratch"),
            vertex(context_op(), &[], "context"),
            vertex(
                copy_op(1, "nope.txt", "/"),
                &[0, 1],
                "[1/1] COPY nope.txt /",
            ),
        ],
        target: VertexId(2),
        image: ImageConfig::default(),
    };
    let (result, _) = w.solve(g);
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("nope.txt") && err.contains("not found"),
        "{err}"
    );
}
