//! Several lowered targets (a bake's) joined into the one graph the solver runs: each
//! target's platforms joined first, its contexts opened only if it reads them and renamed so
//! that every name is unique in the joined graph (targets that read the same directory with
//! the same Dockerfile share one context), then the targets joined with their names in front
//! of their steps' names.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use rbuild_context::BuildContext;
use rbuild_graph::{Graph, Op, VertexId};
use rbuild_solver::ports::RemoteSource;

use crate::build::Label;
use crate::config::BuildConfig;
use crate::context::{open_named, stat_cache_path, Context, MAIN};
use crate::error::BuildError;
use crate::lowered::Lowered;

/// The joined graph and what locates each target in it.
pub(crate) struct Joint {
    pub graph: Arc<Graph>,
    /// The vertices to solve: each target's platforms in turn, targets in order.
    pub targets: Vec<VertexId>,
    /// Each target's vertices in the joined graph.
    pub ranges: Vec<Range<u32>>,
    /// Each target's own graph (its contexts renamed), for what is asked of one target.
    pub per_target: Vec<Arc<Graph>>,
    /// The contexts the graph reads, by their names in it.
    pub contexts: Vec<(String, Arc<BuildContext>)>,
}

/// Joins `lowered` (whose graphs and contexts are taken), target `i` built by `configs[i]`
/// and named by `labels[i]`.
pub(crate) fn join(
    lowered: &mut [Lowered],
    configs: &[BuildConfig],
    labels: &[Label],
    remote: &dyn RemoteSource,
) -> Result<Joint, BuildError> {
    // One graph per target (its platforms joined), its contexts opened only if it reads
    // them, under names unique in the joined graph.
    let mut parts = Vec::with_capacity(lowered.len());
    let mut contexts: Vec<(String, Arc<BuildContext>)> = Vec::new();
    let mut shared_dirs: Vec<(PathBuf, Option<PathBuf>, String)> = Vec::new();
    for (i, target) in lowered.iter_mut().enumerate() {
        let graphs = std::mem::take(&mut target.graphs);
        let (mut graph, platform_targets) = if let [_] = graphs.as_slice() {
            let mut graphs = graphs;
            let graph = graphs.remove(0);
            let t = graph.target;
            (graph, vec![t])
        } else {
            // BuildKit's progress names: `[linux/arm64 build 2/3] RUN …`.
            let platforms = &target.platforms;
            rbuild_graph::concat(graphs, |i, name| {
                crate::build::with_prefix(&platforms[i].to_string(), name)
            })
        };
        let config = &configs[i];
        // Targets reading the same context directory with the same Dockerfile share it.
        let same_dir = match &target.context {
            Some(Context::Dir {
                dir, dockerfile, ..
            }) => shared_dirs
                .iter()
                .find(|(d, f, _)| d == dir && f == dockerfile)
                .map(|(_, _, name)| name.clone()),
            _ => None,
        };
        let main_name = match &same_dir {
            Some(name) => name.clone(),
            None if i == 0 => MAIN.to_string(),
            None => format!("{MAIN}#{i}"),
        };
        if same_dir.is_none() {
            let dir = match &target.context {
                Some(Context::Dir {
                    dir, dockerfile, ..
                }) => Some((dir.clone(), dockerfile.clone())),
                _ => None,
            };
            if let Some(context) = target.context.take() {
                if let Some(ctx) = context.open_for(&graph)? {
                    contexts.push((main_name.clone(), Arc::new(ctx)));
                    // Shared only once opened: a target that does not read it opens nothing.
                    if let Some((dir, dockerfile)) = dir {
                        shared_dirs.push((dir, dockerfile, main_name.clone()));
                    }
                }
            }
        }
        for (name, ctx) in open_named(&graph, &config.named_contexts, remote, |dir| {
            stat_cache_path(&config.store_root, dir)
        })? {
            contexts.push((renamed(&name, i), Arc::new(ctx)));
        }
        rename_contexts(&mut graph, |name| {
            if name == MAIN {
                main_name.clone()
            } else {
                renamed(name, i)
            }
        });
        parts.push((graph, platform_targets));
    }
    let mut ranges = Vec::with_capacity(parts.len());
    let mut solve_targets = Vec::new();
    let mut offset = 0u32;
    for (graph, platform_targets) in &parts {
        let len = graph.vertices.len() as u32;
        ranges.push(offset..offset + len);
        solve_targets.extend(platform_targets.iter().map(|t| VertexId(t.0 + offset)));
        offset += len;
    }
    let per_target: Vec<Arc<Graph>> = parts.iter().map(|(g, _)| Arc::new(g.clone())).collect();
    let (graph, _) =
        rbuild_graph::concat(parts.into_iter().map(|(g, _)| g).collect(), |i, name| {
            labels[i](name)
        });
    Ok(Joint {
        graph: Arc::new(graph),
        targets: solve_targets,
        ranges,
        per_target,
        contexts,
    })
}

/// The name target `i` of a joined build gives its named context `name` (the first target
/// keeps its names).
fn renamed(name: &str, i: usize) -> String {
    if i == 0 {
        name.to_string()
    } else {
        format!("{name}#{i}")
    }
}

/// Renames the contexts `graph` reads. A context's name is in its own key only, never in
/// the keys of the copies from it (those key what they select), so renaming changes no step.
fn rename_contexts(graph: &mut Graph, rename: impl Fn(&str) -> String) {
    for v in &mut graph.vertices {
        if let Op::Context { name } = &mut v.op {
            *name = rename(name);
        }
    }
}
