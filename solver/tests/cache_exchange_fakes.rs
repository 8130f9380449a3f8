//! The solver and the `CacheExchange` port, with fakes (no root, no network): a key the cache
//! index misses is looked up in the exchange, its layers imported, and the step is CACHED and
//! recorded in the index; a failed import is reported and the step runs.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rbuild_cache::{SnapshotId, Store};
use rbuild_graph::{Graph, ImageConfig, VertexId};
use rbuild_solver::events::Event;
use rbuild_solver::ports::{
    CacheExchange, CacheExchangeError, CacheExport, CacheLayer, LayerMediaType, SolvedStep,
};
use rbuild_solver::{Solved, Solver};
use rbuild_test_support::fakes::{busybox_op, exec_op, vertex, FakeExecutor, FakeImages};
use rbuild_types::Digest;

/// FROM busybox; RUN one; RUN two
fn graph() -> Graph {
    Graph {
        vertices: vec![
            vertex(busybox_op(), &[], "[1/3] FROM busybox"),
            vertex(
                rbuild_graph::Op::Exec(exec_op(&["one"])),
                &[0],
                "[2/3] RUN one",
            ),
            vertex(
                rbuild_graph::Op::Exec(exec_op(&["two"])),
                &[1],
                "[3/3] RUN two",
            ),
        ],
        target: VertexId(2),
        image: ImageConfig::default(),
    }
}

/// An exchange holding another store's steps; importing commits an empty snapshot under each
/// layer's name (the solver does not look inside), or with `lazy` records each as a lazy layer
/// as the real adapter does.
struct FakeExchange {
    store: Arc<Store>,
    steps: HashMap<Digest, Vec<CacheLayer>>,
    fail: bool,
    lazy: bool,
    imports: Mutex<usize>,
}

impl FakeExchange {
    fn of(store: &Arc<Store>, steps: &[SolvedStep], fail: bool) -> Self {
        let layer = |s: &SnapshotId| CacheLayer {
            snapshot: *s,
            digest: s.0,
            size: 0,
            media_type: LayerMediaType::Tar,
            diff_id: s.0,
        };
        FakeExchange {
            store: Arc::clone(store),
            steps: steps
                .iter()
                .map(|s| (s.key, s.layers.iter().map(layer).collect()))
                .collect(),
            fail,
            lazy: false,
            imports: Mutex::new(0),
        }
    }

    fn lazy(mut self) -> Self {
        self.lazy = true;
        self
    }

    /// Without the steps whose key is not in `keep`.
    fn only(mut self, keep: &[Digest]) -> Self {
        self.steps.retain(|k, _| keep.contains(k));
        self
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the cache is gone")]
struct Gone;

impl CacheExchange for FakeExchange {
    fn lookup(&self, key: &Digest) -> Option<Vec<CacheLayer>> {
        self.steps.get(key).cloned()
    }

    fn import(&self, layers: &[CacheLayer]) -> Result<Vec<SnapshotId>, CacheExchangeError> {
        *self.imports.lock().unwrap() += 1;
        if self.fail {
            return Err(CacheExchangeError {
                what: "importing".into(),
                source: Box::new(Gone),
            });
        }
        for l in layers {
            if self.lazy {
                let lazy = rbuild_cache::LazyLayer {
                    diff_id: l.diff_id,
                    blob: rbuild_cache::LayerBlob {
                        digest: l.digest,
                        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                        size: l.size,
                    },
                };
                self.store.lazy_layers().set(&l.snapshot, &lazy).unwrap();
            } else if self.store.snapshots().path(&l.snapshot).is_none() {
                let prepared = self.store.snapshots().prepare().unwrap();
                self.store
                    .snapshots()
                    .commit(prepared, &l.snapshot)
                    .unwrap();
            }
        }
        Ok(layers.iter().map(|l| l.snapshot).collect())
    }

    fn export(&self, _: &CacheExport) -> Result<(), CacheExchangeError> {
        Ok(())
    }
}

struct Runner {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    exec: Arc<FakeExecutor>,
    images: Arc<FakeImages>,
}

impl Runner {
    fn new() -> Runner {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        Runner {
            _dir: dir,
            images: Arc::new(FakeImages::new(Arc::clone(&store))),
            store,
            exec: Arc::new(FakeExecutor::default()),
        }
    }

    fn solve(&self, exchange: Option<Arc<dyn CacheExchange>>) -> (Solved, Vec<Event>) {
        let mut solver = Solver::new(
            Arc::clone(&self.store),
            self.exec.clone(),
            self.images.clone(),
            Arc::new(rbuild_test_support::fakes::NoRemote),
            rbuild_test_support::privileges(),
        );
        if let Some(x) = exchange {
            solver = solver.with_cache_exchange(x);
        }
        let (solved, events) = common::solve_steps(solver, graph());
        (solved.unwrap(), events)
    }
}

#[test]
fn imported_results_make_steps_cached_and_land_in_the_index() {
    let a = Runner::new();
    let (solved_a, _) = a.solve(None);
    assert_eq!(solved_a.steps.len(), 3, "FROM and two RUNs");
    assert_eq!(solved_a.steps[2].layers, solved_a.target.layers);

    let b = Runner::new();
    let exchange = Arc::new(FakeExchange::of(&b.store, &solved_a.steps, false));
    let (solved_b, events) = b.solve(Some(exchange.clone()));
    assert_eq!(b.exec.count(), 0, "nothing ran");
    assert_eq!(common::cached_names(&events).len(), 3, "{events:?}");
    assert_eq!(solved_b.target, solved_a.target);

    // The imports were recorded: without the exchange, runner B's own index hits.
    let (_, events) = b.solve(None);
    assert_eq!(common::cached_names(&events).len(), 3, "{events:?}");
    assert_eq!(b.exec.count(), 0);
}

#[test]
fn a_failed_import_is_reported_and_the_step_runs() {
    let a = Runner::new();
    let (solved_a, _) = a.solve(None);
    let b = Runner::new();
    let exchange = Arc::new(FakeExchange::of(&b.store, &solved_a.steps, true));
    let (_, events) = b.solve(Some(exchange.clone()));
    let failed: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::CacheImportFailed { error, .. } if error.contains("the cache is gone")))
        .collect();
    assert_eq!(failed.len(), 3, "{events:?}");
    assert_eq!(b.exec.count(), 2, "both RUNs ran");
}

#[test]
fn imported_layers_stay_lazy_until_a_step_that_runs_reads_them() {
    let a = Runner::new();
    let (solved_a, _) = a.solve(None);

    // Every step imported: nothing runs, so nothing is unpacked.
    let b = Runner::new();
    let exchange = FakeExchange::of(&b.store, &solved_a.steps, false).lazy();
    let (solved_b, events) = b.solve(Some(Arc::new(exchange)));
    assert_eq!(b.exec.count(), 0);
    assert_eq!(common::cached_names(&events).len(), 3, "{events:?}");
    assert!(b.images.unpacked().is_empty(), "{:?}", b.images.unpacked());
    assert!(solved_b
        .target
        .layers
        .iter()
        .all(|l| b.store.snapshots().path(l).is_none()));
    // Lazy results count as cached in the runner's own index too.
    let (_, events) = b.solve(None);
    assert_eq!(common::cached_names(&events).len(), 3, "{events:?}");
    assert!(b.images.unpacked().is_empty());

    // Only FROM and the first RUN imported: the second RUN runs, on the unpacked layers of
    // the first RUN's result (the base layer and its own), and nothing else is unpacked.
    let c = Runner::new();
    let keep = [solved_a.steps[0].key, solved_a.steps[1].key];
    let exchange = FakeExchange::of(&c.store, &solved_a.steps, false)
        .lazy()
        .only(&keep);
    c.solve(Some(Arc::new(exchange)));
    assert_eq!(c.exec.count(), 1, "the second RUN ran");
    let mut unpacked = c.images.unpacked();
    unpacked.sort();
    let mut wanted = solved_a.steps[1].layers.clone();
    wanted.sort();
    assert_eq!(unpacked, wanted);
}

/// An exchange that imported the contents of cache mounts (`cache-mounts=true`): seeding
/// writes `seeded-by-exchange` into the new directory and counts the calls.
#[derive(Default)]
struct MountExchange {
    ids: Vec<&'static str>,
    seeds: Mutex<Vec<String>>,
}

impl CacheExchange for MountExchange {
    fn lookup(&self, _: &Digest) -> Option<Vec<CacheLayer>> {
        None
    }

    fn import(&self, _: &[CacheLayer]) -> Result<Vec<SnapshotId>, CacheExchangeError> {
        Ok(vec![])
    }

    fn export(&self, _: &CacheExport) -> Result<(), CacheExchangeError> {
        Ok(())
    }

    fn seed_cache_mount(
        &self,
        id: &str,
        dir: &std::path::Path,
    ) -> Result<bool, CacheExchangeError> {
        self.seeds.lock().unwrap().push(id.to_string());
        if !self.ids.contains(&id) {
            return Ok(false);
        }
        std::fs::write(dir.join("f"), "seeded-by-exchange").unwrap();
        Ok(true)
    }
}

/// FROM busybox; RUN with cache mounts `pip` and `other`.
fn graph_with_mounts() -> Graph {
    let mount = |id: &str, target: &str| {
        rbuild_graph::Mount::Cache(rbuild_graph::CacheMount {
            target: target.into(),
            id: id.into(),
            sharing: rbuild_graph::CacheSharing::Shared,
            from: None,
            subdir: None,
            readonly: false,
            mode: 0o755,
            uid: 0,
            gid: 0,
        })
    };
    let run = rbuild_graph::ExecOp {
        platform: rbuild_types::Platform::host(),
        mounts: vec![mount("pip", "/c"), mount("other", "/o")],
        ..exec_op(&["uses-mounts"])
    };
    Graph {
        vertices: vec![
            vertex(busybox_op(), &[], "[1/2] FROM busybox"),
            vertex(rbuild_graph::Op::Exec(run), &[0], "[2/2] RUN uses-mounts"),
        ],
        target: VertexId(1),
        image: ImageConfig::default(),
    }
}

#[test]
fn a_new_cache_mount_is_seeded_from_the_exchange_once_and_only_when_leased() {
    let w = Runner::new();
    let solve = |graph: Graph, exchange: &Arc<MountExchange>| {
        let solver = Solver::new(
            Arc::clone(&w.store),
            w.exec.clone(),
            Arc::new(FakeImages::new(Arc::clone(&w.store))),
            Arc::new(rbuild_test_support::fakes::NoRemote),
            rbuild_test_support::privileges(),
        )
        .with_cache_exchange(exchange.clone());
        common::solve_steps(solver, graph).0.unwrap()
    };
    let exchange = Arc::new(MountExchange {
        ids: vec!["pip"],
        ..MountExchange::default()
    });
    solve(graph_with_mounts(), &exchange);
    let mut asked = exchange.seeds.lock().unwrap().clone();
    asked.sort();
    assert_eq!(asked, ["other", "pip"], "each new mount asked once");
    let run = &w.exec.runs()[0];
    let dirs: Vec<_> = run
        .mounts
        .iter()
        .filter_map(|m| match &m.source {
            rbuild_solver::ports::MountSource::Dir(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        std::fs::read_to_string(dirs[0].join("f")).unwrap(),
        "seeded-by-exchange"
    );
    assert!(!dirs[1].join("f").exists(), "nothing imported for it");

    // The mounts exist now: a RUN that runs again is not seeded over them.
    let mut again = graph_with_mounts();
    again.vertices[1].ignore_cache = true;
    solve(again, &exchange);
    assert_eq!(w.exec.count(), 2);
    assert_eq!(exchange.seeds.lock().unwrap().len(), 2, "not asked again");

    // A cached RUN leases nothing, so nothing is seeded (or downloaded) for it, even where
    // its mounts are gone.
    w.store.cache_mounts().prune().unwrap();
    let exchange = Arc::new(MountExchange {
        ids: vec!["pip"],
        ..MountExchange::default()
    });
    let solver = Solver::new(
        Arc::clone(&w.store),
        w.exec.clone(),
        Arc::new(FakeImages::new(Arc::clone(&w.store))),
        Arc::new(rbuild_test_support::fakes::NoRemote),
        rbuild_test_support::privileges(),
    )
    .with_cache_exchange(exchange.clone());
    let (_, events) = common::solve_steps(solver, graph_with_mounts());
    assert_eq!(common::cached_names(&events).len(), 2, "{events:?}");
    assert!(
        exchange.seeds.lock().unwrap().is_empty(),
        "a cached RUN seeds nothing"
    );
}
