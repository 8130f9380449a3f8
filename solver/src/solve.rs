//! The scheduler: keys every reachable vertex once its inputs are done, reuses cached results,
//! deduplicates identical vertices, and runs the rest concurrently (at most `jobs` at a time).
//!
//! When a vertex fails, the build's [`CancelToken`] is cancelled: running commands are killed
//! by their executor, vertices waiting for a slot do not start, and nothing new is scheduled.
//! Each step's output goes to a log file under the store's `logs/<build>/`; each step that
//! runs records its key inputs under its identity (see [`crate::explain`]).

mod execute;
mod lookup;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rbuild_cache::merged::MergedView;
use rbuild_cache::{CacheRecord, SnapshotId, Store};
use rbuild_context::dockerignore::PatternMatcher;
use rbuild_context::{BuildContext, SelectionView};
use rbuild_graph::{FileAction, Graph, Op, VertexId};
use rbuild_types::{Digest, ImageRef, Platform, Privileges};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cancel::CancelToken;
use crate::error::{SolveError, VertexError};
use crate::events::Event;
use crate::explain::{describe_selection, explain, step_identity, Recorded, StepInputs};
use crate::fileop::{CopySource, FileOpRunner};
use crate::keys::{vertex_key, KeyInputs};
use crate::log::VertexLog;
use crate::mounts::{disallowed_insecure, MountError, MountResources, Secret};
use crate::ports::{
    CacheExchange, ExecRequest, Executor, ImageSource, RemoteSource, ResolvedImage, SolvedStep,
};
use crate::EventSink;

/// The result of a vertex: its key and its filesystem as layers, bottom first.
#[derive(Clone, Debug, PartialEq)]
pub struct VertexResult {
    pub key: Digest,
    pub layers: Vec<SnapshotId>,
}

/// What [`Solver::solve_steps`] returns: the target's result and every step's, for export to
/// a cache (`--cache-to`).
#[derive(Clone, Debug, PartialEq)]
pub struct Solved {
    pub target: VertexResult,
    /// Every target's result, in the order asked ([`Solver::solve_targets`]); the graph's
    /// own target alone for [`Solver::solve_steps`].
    pub targets: Vec<VertexResult>,
    /// Each distinct key with layers once, in vertex order (scratch and contexts left out).
    pub steps: Vec<SolvedStep>,
}

/// Everything a solve needs from outside.
pub struct Solver {
    store: Arc<Store>,
    executor: Arc<dyn Executor>,
    images: Arc<dyn ImageSource>,
    remote: Arc<dyn RemoteSource>,
    /// Results imported with `--cache-from`, consulted when the cache index misses.
    exchange: Option<Arc<dyn CacheExchange>>,
    contexts: HashMap<String, Arc<BuildContext>>,
    /// By reference and the platform it was resolved for.
    resolved: HashMap<(ImageRef, Platform), ResolvedImage>,
    jobs: usize,
    scope: String,
    explain: bool,
    /// Secrets, SSH agents and entitlements for `RUN --mount` / `--security`.
    resources: MountResources,
    /// rbuild's privileges (detected at startup): whether file ops give files their owners.
    privileges: Privileges,
}

/// State of one solve shared by its tasks.
struct Build {
    cancel: CancelToken,
    /// The build's log directory.
    logs: PathBuf,
    /// Keys whose cached results were used (stamped as used at the end).
    hits: Mutex<Vec<Digest>>,
}

/// Vertices that may execute at once by default: four per CPU. BuildKit sets no limit, and a
/// limit of one per CPU held back CPU-bound stages: three independent 1.5 s RUNs on 2 cores
/// finished at 1.6–1.9 s instead of 1.3 s, as the third could only start when one of the
/// others ended. Four per CPU still bounds the sandboxes and copies in flight.
fn default_jobs() -> usize {
    4 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Solver {
    /// A solver over `store` running RUN through `executor`, bases from `images` and remote
    /// sources from `remote`, its file ops writing with `privileges` (rbuild's, detected once
    /// at startup).
    pub fn new(
        store: Arc<Store>,
        executor: Arc<dyn Executor>,
        images: Arc<dyn ImageSource>,
        remote: Arc<dyn RemoteSource>,
        privileges: Privileges,
    ) -> Self {
        Solver {
            store,
            executor,
            images,
            remote,
            exchange: None,
            contexts: HashMap::new(),
            resolved: HashMap::new(),
            jobs: default_jobs(),
            scope: String::new(),
            explain: false,
            resources: MountResources::default(),
            privileges,
        }
    }

    /// Names the build for `--explain-cache`: step identities are `scope` plus stage and
    /// instruction index. The binary passes the context directory and the Dockerfile path.
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.scope = scope.to_string();
        self
    }

    /// Emits [`Event::CacheMiss`] with the reasons for each step that misses the cache.
    pub fn with_explain_cache(mut self, explain: bool) -> Self {
        self.explain = explain;
        self
    }

    /// Consults `exchange` for a key the cache index misses (`--cache-from`).
    pub fn with_cache_exchange(mut self, exchange: Arc<dyn CacheExchange>) -> Self {
        self.exchange = Some(exchange);
        self
    }

    /// Registers a build context under `name` (`context` is the main one).
    pub fn with_context(mut self, name: &str, ctx: Arc<BuildContext>) -> Self {
        self.contexts.insert(name.to_string(), ctx);
        self
    }

    /// Base images already resolved for this build (so each tag is resolved once per build).
    pub fn with_resolved(mut self, resolved: impl IntoIterator<Item = ResolvedImage>) -> Self {
        self.resolved.extend(
            resolved
                .into_iter()
                .map(|r| ((r.reference.clone(), r.platform.clone()), r)),
        );
        self
    }

    /// At most `jobs` vertices execute at once (at least one).
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Secrets `RUN --mount=type=secret` may use, by id (never in a key, log or event).
    pub fn with_secrets(mut self, secrets: impl IntoIterator<Item = (String, Secret)>) -> Self {
        self.resources.secrets.extend(secrets);
        self
    }

    /// SSH agent sockets `RUN --mount=type=ssh` may use, by id (`default` when none is named).
    pub fn with_ssh(mut self, agents: impl IntoIterator<Item = (String, PathBuf)>) -> Self {
        self.resources.ssh.extend(agents);
        self
    }

    /// Grants the `security.insecure` entitlement (`RUN --security=insecure`).
    pub fn with_allow_insecure(mut self, allow: bool) -> Self {
        self.resources.allow_insecure = allow;
        self
    }

    /// Solves the graph's target, emitting progress events to `events`.
    pub async fn solve(
        self: &Arc<Self>,
        graph: Arc<Graph>,
        events: EventSink,
    ) -> Result<VertexResult, SolveError> {
        Ok(self.solve_steps(graph, events).await?.target)
    }

    /// [`Solver::solve`], also returning every solved step's key and layers.
    pub async fn solve_steps(
        self: &Arc<Self>,
        graph: Arc<Graph>,
        events: EventSink,
    ) -> Result<Solved, SolveError> {
        let target = graph.target;
        self.solve_targets(graph, vec![target], events).await
    }

    /// Solves several targets of one graph at once (a multi-platform build: one per
    /// platform), each key once whichever targets need it.
    pub async fn solve_targets(
        self: &Arc<Self>,
        graph: Arc<Graph>,
        targets: Vec<VertexId>,
        events: EventSink,
    ) -> Result<Solved, SolveError> {
        graph.validate()?;
        if let Some(missing) = targets.iter().find(|t| t.index() >= graph.vertices.len()) {
            return Err(rbuild_graph::GraphError::MissingTarget(missing.0).into());
        }
        if let Some(id) = disallowed_insecure(&graph, self.resources.allow_insecure) {
            let e = MountError::InsecureNotAllowed.into();
            return Err(vertex_error(&graph, id, vec![], None, e));
        }
        let logs = self.store.logs().create().map_err(SolveError::Logs)?;
        let build = Arc::new(Build {
            cancel: CancelToken::new(),
            logs: logs.dir,
            hits: Mutex::new(Vec::new()),
        });
        let result = self.solve_graph(&graph, &targets, &events, &build).await;
        let hits = std::mem::take(&mut *build.hits.lock().unwrap_or_else(|e| e.into_inner()));
        // Best effort: last-use stamps only order garbage collection.
        let _ = self.store.index().touch(&hits, now_unix());
        // A build whose steps printed nothing (all cached, say) keeps no empty log directory;
        // removing a directory that holds logs fails, and that is the point.
        let _ = std::fs::remove_dir(&build.logs);
        result
    }

    async fn solve_graph(
        self: &Arc<Self>,
        graph: &Arc<Graph>,
        targets: &[VertexId],
        events: &EventSink,
        build: &Arc<Build>,
    ) -> Result<Solved, SolveError> {
        let reachable = graph.reachable_from(targets);
        let mut waiting_on: HashMap<VertexId, usize> = HashMap::new();
        let mut dependents: HashMap<VertexId, Vec<VertexId>> = HashMap::new();
        for &id in &reachable {
            let v = graph.vertex(id);
            let mut distinct = v.inputs.clone();
            distinct.sort();
            distinct.dedup();
            waiting_on.insert(id, distinct.len());
            for inp in distinct {
                dependents.entry(inp).or_default().push(id);
            }
        }
        let limit = Arc::new(Semaphore::new(self.jobs));
        let mut results: HashMap<VertexId, VertexResult> = HashMap::new();
        // Vertices currently running under a key, and others waiting for the same key.
        let mut running: HashMap<Digest, Vec<VertexId>> = HashMap::new();
        let mut tasks: JoinSet<(VertexId, Result<Step, SolveError>)> = JoinSet::new();
        let mut first_error: Option<SolveError> = None;

        for &id in &reachable {
            if waiting_on[&id] == 0 {
                self.spawn_key(&mut tasks, graph, id, &results);
            }
        }
        while let Some(joined) = tasks.join_next().await {
            let (id, step) = match joined {
                Ok(r) => r,
                Err(e) => {
                    build.cancel.cancel();
                    first_error.get_or_insert(SolveError::Vertex {
                        vertex: u32::MAX,
                        name: "internal".into(),
                        span: None,
                        log_tail: vec![],
                        log_path: None,
                        source: VertexError::Task(e),
                    });
                    continue;
                }
            };
            let step = match step {
                Ok(s) => s,
                Err(e) => {
                    build.cancel.cancel();
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            if first_error.is_some() {
                continue; // let running work finish, start nothing new
            }
            match step {
                Step::Keyed(keyed) => {
                    if let Some(others) = running.get_mut(&keyed.key) {
                        others.push(id); // an identical vertex is running: share its result
                        continue;
                    }
                    running.insert(keyed.key, vec![id]);
                    let this = Arc::clone(self);
                    let graph = Arc::clone(graph);
                    let events = events.clone();
                    let limit = Arc::clone(&limit);
                    let build = Arc::clone(build);
                    let inputs = self.input_results(&graph, id, &results);
                    tasks.spawn(async move {
                        let r = this
                            .run_vertex(&graph, id, *keyed, inputs, events, limit, build)
                            .await;
                        (id, r.map(Step::Done))
                    });
                }
                Step::Done(result) => {
                    let sharing = running.remove(&result.key).unwrap_or_else(|| vec![id]);
                    for done in sharing {
                        if done != id {
                            let v = graph.vertex(done);
                            if is_shown(&v.op) {
                                events(Event::Cached {
                                    vertex: done.0,
                                    name: v.name.clone(),
                                });
                            }
                        }
                        results.insert(done, result.clone());
                        for &dep in dependents.get(&done).map(Vec::as_slice).unwrap_or(&[]) {
                            let n = waiting_on.get_mut(&dep).map(|n| {
                                *n -= 1;
                                *n
                            });
                            if n == Some(0) {
                                self.spawn_key(&mut tasks, graph, dep, &results);
                            }
                        }
                    }
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let targets: Option<Vec<VertexResult>> =
            targets.iter().map(|t| results.get(t).cloned()).collect();
        let targets = targets.ok_or(SolveError::Unfinished)?;
        let target = targets.first().cloned().ok_or(SolveError::Unfinished)?;
        let mut ids: Vec<&VertexId> = results.keys().collect();
        ids.sort();
        let mut seen = std::collections::HashSet::new();
        let steps = ids
            .into_iter()
            .filter(|id| is_shown(&graph.vertex(**id).op))
            .map(|id| &results[id])
            .filter(|r| !r.layers.is_empty() && seen.insert(r.key))
            .map(|r| SolvedStep {
                key: r.key,
                layers: r.layers.clone(),
            })
            .collect();
        Ok(Solved {
            target,
            targets,
            steps,
        })
    }

    /// Spawns the keying of a vertex whose inputs are all done.
    fn spawn_key(
        self: &Arc<Self>,
        tasks: &mut JoinSet<(VertexId, Result<Step, SolveError>)>,
        graph: &Arc<Graph>,
        id: VertexId,
        results: &HashMap<VertexId, VertexResult>,
    ) {
        let this = Arc::clone(self);
        let graph = Arc::clone(graph);
        let inputs = self.input_results(&graph, id, results);
        tasks.spawn(async move {
            let r = this.key_vertex(&graph, id, &inputs).await;
            (id, r.map(|k| Step::Keyed(Box::new(k))))
        });
    }

    fn input_results(
        &self,
        graph: &Graph,
        id: VertexId,
        results: &HashMap<VertexId, VertexResult>,
    ) -> Vec<VertexResult> {
        graph
            .vertex(id)
            .inputs
            .iter()
            .filter_map(|i| results.get(i).cloned())
            .collect()
    }

    fn context(&self, name: &str) -> Result<Arc<BuildContext>, VertexError> {
        self.contexts
            .get(name)
            .cloned()
            .ok_or_else(|| VertexError::UnknownContext(name.to_string()))
    }

    /// Computes a vertex's key (resolving images and selecting context content as needed).
    async fn key_vertex(
        self: &Arc<Self>,
        graph: &Graph,
        id: VertexId,
        inputs: &[VertexResult],
    ) -> Result<Keyed, SolveError> {
        let v = graph.vertex(id);
        let fail = |source: VertexError| vertex_error(graph, id, vec![], None, source);
        let input_keys: Vec<Option<Digest>> = v
            .inputs
            .iter()
            .zip(inputs)
            .map(|(i, r)| match graph.vertex(*i).op {
                Op::Context { .. } => None,
                _ => Some(r.key),
            })
            .collect();
        let known_keys = input_keys.clone();
        match &v.op {
            Op::Image(img) => {
                let known = (img.reference.clone(), img.platform.clone());
                let resolved = match self.resolved.get(&known) {
                    Some(r) => r.clone(),
                    None => {
                        let this = Arc::clone(self);
                        let (reference, platform) = (img.reference.clone(), img.platform.clone());
                        tokio::task::spawn_blocking(move || {
                            this.images.resolve(&reference, &platform)
                        })
                        .await
                        .map_err(|e| fail(e.into()))?
                        .map_err(|e| fail(e.into()))?
                    }
                };
                let key = vertex_key(
                    &v.op,
                    &KeyInputs {
                        input_keys,
                        manifest: Some(&resolved.manifest_digest),
                        selections: vec![],
                    },
                );
                let mut step = step_inputs(graph, id, key, &known_keys);
                step.image = Some((img.reference.to_string(), resolved.manifest_digest));
                Ok(Keyed {
                    key,
                    image: Some(resolved),
                    selections: BTreeMap::new(),
                    copies_described: false,
                    step,
                    remote: None,
                    rerun: false,
                })
            }
            Op::File(file) => {
                // Select what each copy from a context reads: its digest is part of the key.
                let mut selections = BTreeMap::new();
                let mut digests = Vec::new();
                for (n, action) in file.actions.iter().enumerate() {
                    let FileAction::Copy(copy) = action else {
                        digests.push(None);
                        continue;
                    };
                    let source = v.inputs[copy.source];
                    let Op::Context { name } = &graph.vertex(source).op else {
                        digests.push(None);
                        continue;
                    };
                    let ctx = self.context(name).map_err(fail)?;
                    let src = copy.src.clone();
                    let exclude = PatternMatcher::from_text(&copy.exclude)
                        .map_err(|e| fail(rbuild_context::ContextError::from(e).into()))?;
                    // A view: the selected table positions, not an entry per path.
                    let picked = Arc::clone(&ctx);
                    let sel = tokio::task::spawn_blocking(move || {
                        picked.select_view_excluding(&src, &exclude)
                    })
                    .await
                    .map_err(|e| fail(e.into()))?
                    .map_err(|e| fail(e.into()))?;
                    digests.push(Some(sel.digest));
                    selections.insert(n, Arc::new((ctx, sel)));
                }
                let key = vertex_key(
                    &v.op,
                    &KeyInputs {
                        input_keys,
                        manifest: None,
                        selections: digests,
                    },
                );
                Ok(Keyed {
                    key,
                    image: None,
                    selections,
                    copies_described: false,
                    step: step_inputs(graph, id, key, &known_keys),
                    remote: None,
                    rerun: false,
                })
            }
            Op::Http(_) | Op::Git(_) => {
                // Downloads or asks the remote: off the async threads.
                let (store, op) = (Arc::clone(&self.store), v.op.clone());
                let remote = Arc::clone(&self.remote);
                let resolved = tokio::task::spawn_blocking(move || {
                    crate::remote::resolve(&store, remote.as_ref(), &op)
                })
                .await
                .map_err(|e| fail(e.into()))?
                .map_err(|e| fail(e.into()))?;
                let part = resolved.as_ref().and_then(|r| r.key_part());
                let key = vertex_key(
                    &v.op,
                    &KeyInputs {
                        input_keys,
                        manifest: part.as_ref(),
                        selections: vec![],
                    },
                );
                let mut step = step_inputs(graph, id, key, &known_keys);
                step.remote = resolved
                    .as_ref()
                    .and_then(|r| crate::explain::RemoteInputs::of(&v.op, r));
                Ok(Keyed {
                    key,
                    image: None,
                    selections: BTreeMap::new(),
                    copies_described: false,
                    step,
                    remote: resolved,
                    rerun: false,
                })
            }
            _ => {
                let key = vertex_key(
                    &v.op,
                    &KeyInputs {
                        input_keys,
                        manifest: None,
                        selections: vec![],
                    },
                );
                Ok(Keyed {
                    key,
                    image: None,
                    selections: BTreeMap::new(),
                    copies_described: false,
                    step: step_inputs(graph, id, key, &known_keys),
                    remote: None,
                    rerun: false,
                })
            }
        }
    }

    /// Reuses the cached result of a keyed vertex, or runs it and records the result.
    #[allow(clippy::too_many_arguments)]
    async fn run_vertex(
        self: Arc<Self>,
        graph: &Graph,
        id: VertexId,
        mut keyed: Keyed,
        inputs: Vec<VertexResult>,
        events: EventSink,
        limit: Arc<Semaphore>,
        build: Arc<Build>,
    ) -> Result<VertexResult, SolveError> {
        let v = graph.vertex(id);
        let key = keyed.key;
        match &v.op {
            Op::Scratch | Op::Context { .. } => {
                return Ok(VertexResult {
                    key,
                    layers: vec![],
                })
            }
            _ => {}
        }
        let fail = |source: VertexError| vertex_error(graph, id, vec![], None, source);
        keyed.rerun = v.ignore_cache;
        if !v.ignore_cache {
            if let Some(layers) = self.cached(&key).map_err(fail)? {
                events(Event::Cached {
                    vertex: id.0,
                    name: v.name.clone(),
                });
                lock(&build.hits).push(key);
                return Ok(VertexResult { key, layers });
            }
            if let Some(layers) = self.imported(&key, id, v, &events).await {
                events(Event::Cached {
                    vertex: id.0,
                    name: v.name.clone(),
                });
                return Ok(VertexResult { key, layers });
            }
        }
        let identity = step_identity(&self.scope, v);
        if self.explain {
            // Describing the copied files reads them: off the async threads.
            let this = Arc::clone(&self);
            let (step, identity) = (std::mem::take(&mut keyed.step), identity.clone());
            let selections = keyed.selections.clone();
            let (step, reasons) = tokio::task::spawn_blocking(move || {
                let step = with_copies(step, &selections);
                let recorded = this.store.steps().inputs(&identity).ok().flatten();
                let before = Recorded::parse(recorded.as_deref());
                let reasons = explain(&before, &step, false);
                (step, reasons)
            })
            .await
            .map_err(|e| fail(e.into()))?;
            keyed.step = step;
            keyed.copies_described = true;
            let reasons = if v.ignore_cache {
                explain(&Recorded::None, &keyed.step, true)
            } else {
                reasons
            };
            events(Event::CacheMiss {
                vertex: id.0,
                name: v.name.clone(),
                reasons,
            });
        }
        let _permit = limit.acquire_owned().await;
        if build.cancel.is_cancelled() {
            return Err(fail(VertexError::Canceled));
        }
        events(Event::Started {
            vertex: id.0,
            name: v.name.clone(),
        });
        let started = Instant::now();
        let log = Arc::new(VertexLog::new(
            id.0,
            &v.name,
            Some(&build.logs),
            events.clone(),
        ));
        let this = Arc::clone(&self);
        let op = v.op.clone();
        let input_ops: Vec<Op> = v
            .inputs
            .iter()
            .map(|i| graph.vertex(*i).op.clone())
            .collect();
        let task_log = Arc::clone(&log);
        let cancel = build.cancel.clone();
        let record_name = v.name.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let layers =
                this.execute(&op, &input_ops, &keyed, &inputs, task_log.as_ref(), &cancel)?;
            let step = if keyed.copies_described {
                keyed.step
            } else {
                with_copies(keyed.step, &keyed.selections)
            };
            let step_bytes = serde_json::to_vec(&step).unwrap_or_default();
            let record = CacheRecord {
                layers: layers.clone(),
                created_unix: now_unix(),
                name: record_name,
                last_used_unix: 0,
            };
            if let Err(e) =
                this.store
                    .index()
                    .record_step(&key, &record, Some((&identity, &step_bytes)))
            {
                // Nothing names the layer this step just published (e.g. the index could not
                // grow on a full disk): take it back rather than leave it for `prune --all`.
                if let Some(top) = layers.last().filter(|l| l.0 == key) {
                    let _ = this.store.snapshots().retract(top);
                }
                return Err(e.into());
            }
            Ok(layers)
        })
        .await
        .map_err(VertexError::from)
        .and_then(|r| r);
        let seconds = started.elapsed().as_secs_f64();
        let log_file = log.finish();
        match outcome {
            Ok(layers) => {
                if let Err((path, source)) = log_file {
                    return Err(fail(VertexError::Log { path, source }));
                }
                events(Event::Done {
                    vertex: id.0,
                    seconds,
                });
                Ok(VertexResult { key, layers })
            }
            Err(e) => {
                let e = if build.cancel.is_cancelled() && !matches!(e, VertexError::Canceled) {
                    events(Event::Canceled {
                        vertex: id.0,
                        seconds,
                    });
                    VertexError::Canceled
                } else {
                    events(Event::Failed {
                        vertex: id.0,
                        seconds,
                        error: e.to_string(),
                    });
                    e
                };
                Err(vertex_error(
                    graph,
                    id,
                    log.tail(),
                    log_file.ok().flatten(),
                    e,
                ))
            }
        }
    }

    /// Publishes a vertex's new layer under its key: a rerun's replaces what the key had.
    fn publish(
        &self,
        prepared: rbuild_cache::PreparedSnapshot,
        keyed: &Keyed,
    ) -> Result<SnapshotId, VertexError> {
        let id = SnapshotId(keyed.key);
        if keyed.rerun {
            self.store.snapshots().replace(prepared, &id)?;
        } else {
            self.store.snapshots().commit(prepared, &id)?;
        }
        Ok(id)
    }

    fn layer_paths(&self, layers: &[SnapshotId]) -> Result<Vec<PathBuf>, VertexError> {
        layers
            .iter()
            .map(|l| {
                self.store
                    .snapshots()
                    .path(l)
                    .ok_or(VertexError::MissingSnapshot(*l))
            })
            .collect()
    }

    /// `e` marked [`VertexError::StoreFull`] when the store's filesystem is full now, while
    /// the failed step's partial layer still takes its room.
    fn store_full(&self, e: VertexError) -> VertexError {
        if self.store.space().is_full() {
            VertexError::StoreFull {
                store: self.store.root().to_path_buf(),
                source: Box::new(e),
            }
        } else {
            e
        }
    }
}

/// What keying a vertex found out, handed on to running it.
struct Keyed {
    key: Digest,
    image: Option<ResolvedImage>,
    /// Per copy action (by index) from a context: that context and what the copy selects.
    selections: BTreeMap<usize, Arc<CopySelection>>,
    /// The key's inputs, for `--explain-cache` (copies described lazily: it reads files).
    step: StepInputs,
    /// Whether `step.copies` has been filled in.
    copies_described: bool,
    /// What an `Http` or `Git` source resolved to (see [`crate::remote`]).
    remote: Option<crate::remote::Resolved>,
    /// The vertex runs although its key may be cached (`--no-cache`, `--no-cache-filter`):
    /// its fresh snapshot replaces the one recorded under the key.
    rerun: bool,
}

/// The cheap part of a vertex's [`StepInputs`]: name, op and inputs.
fn step_inputs(graph: &Graph, id: VertexId, key: Digest, keys: &[Option<Digest>]) -> StepInputs {
    let v = graph.vertex(id);
    StepInputs {
        key: Some(key),
        name: v.name.clone(),
        op: v.op.clone(),
        inputs: v
            .inputs
            .iter()
            .zip(keys)
            .map(|(i, k)| (graph.vertex(*i).name.clone(), *k))
            .collect(),
        ..StepInputs::default()
    }
}

/// A copy's context and its selection in it (the view's positions point into that context).
type CopySelection = (Arc<BuildContext>, SelectionView);

/// Adds the description of each copy's selected files (reads the files of small selections).
fn with_copies(
    mut step: StepInputs,
    selections: &BTreeMap<usize, Arc<CopySelection>>,
) -> StepInputs {
    let src = |n: usize| match &step.op {
        Op::File(f) => match f.actions.get(n) {
            Some(FileAction::Copy(c)) => c.src.as_str(),
            _ => "",
        },
        _ => "",
    };
    let copies = selections
        .iter()
        .map(|(n, s)| describe_selection(src(*n), &s.0, &s.1))
        .collect();
    step.copies = copies;
    step
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Step {
    Keyed(Box<Keyed>),
    Done(VertexResult),
}

/// Whether progress shows this op (BuildKit shows neither scratch nor the context source).
fn is_shown(op: &Op) -> bool {
    !matches!(op, Op::Scratch | Op::Context { .. })
}

fn vertex_error(
    graph: &Graph,
    id: VertexId,
    log_tail: Vec<String>,
    log_path: Option<PathBuf>,
    source: VertexError,
) -> SolveError {
    let v = graph.vertex(id);
    SolveError::Vertex {
        vertex: id.0,
        name: v.name.clone(),
        span: v.span,
        log_tail,
        log_path,
        source,
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
