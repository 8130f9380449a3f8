//! [`build`]: one build, in the order it runs — read the Dockerfile, parse and plan it, open
//! the store, resolve the base images through the frontend's resolver (ONBUILD included),
//! lower to a graph (those steps per target in `lowered`), open the context if a step reads
//! it, wire the solver to the sandbox, the image source and the remote source, solve,
//! export, and collect garbage if configured. [`build_all`] runs several builds (a bake's
//! targets) the same way with one joint solve.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use rbuild_cache::Store;
use rbuild_graph::ImageConfig;
use rbuild_oci::source::RegistrySource;
use rbuild_solver::Solver;

use crate::config::{BuildConfig, ContextSpec};
use crate::error::BuildError;
use crate::events::{retry_notices, transfer_progress, BuildEvent, EventSink, Warning};
use crate::export::{export, Exported, Network};

/// What a build reads from and writes to besides files: the caller's event sink, and the
/// standard streams `-` and `dest=-` stand for (`None`: the build needs none).
pub struct BuildIo {
    pub events: EventSink,
    /// Read (once) for a Dockerfile or context on standard input.
    pub stdin: Option<Box<dyn Read>>,
    /// Written by the one output with `dest=-`.
    pub stdout: Option<Box<dyn Write>>,
}

/// Runs one build: the image is committed to the store (named when asked), the outputs are
/// written, and what was built is returned. Nothing is printed; progress goes to
/// `io.events`.
pub fn build(config: BuildConfig, io: BuildIo) -> Result<Exported, BuildError> {
    let mut built = run(vec![(String::new(), config)], io)?;
    Ok(built.remove(0))
}

/// Runs several builds (`rbuild bake`'s targets, each named) as one: every target is read and
/// lowered on its own (its context, Dockerfile, args, target stage, platforms), the graphs
/// are joined and solved once, so a step two targets share (the same key: a common base
/// stage) runs once and independent steps run in parallel, then each target is exported as
/// [`build`] exports it. Settings of the whole run (store, registries, runtime, `--jobs`,
/// explain scope) are the first target's; `--pull`, cache imports, secrets and SSH agents all
/// targets'.
/// Step names get the target's name in front (`[web base 2/3] RUN …`), as buildx shows them.
pub fn build_all(
    targets: Vec<(String, BuildConfig)>,
    io: BuildIo,
) -> Result<Vec<Exported>, BuildError> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    run(targets, io)
}

fn run(targets: Vec<(String, BuildConfig)>, io: BuildIo) -> Result<Vec<Exported>, BuildError> {
    let BuildIo {
        events,
        mut stdin,
        mut stdout,
    } = io;
    let (names, mut configs): (Vec<String>, Vec<BuildConfig>) = targets.into_iter().unzip();
    let first = configs[0].clone();
    let build_started = rbuild_oci::time::now_unix();
    // HTTP and git downloads, for the context and the solver alike.
    let remote = crate::remote::remote_source(&first.settings.registries);
    // Step names get the target's name in front when there are several.
    let prefixed = names.len() > 1;
    let labels: Vec<Label> = names
        .iter()
        .map(|name| -> Label {
            let name = name.clone();
            if prefixed {
                Box::new(move |step: &str| with_prefix(&name, step))
            } else {
                Box::new(|step: &str| step.to_string())
            }
        })
        .collect();
    let mut planned = Vec::with_capacity(configs.len());
    for (config, label) in configs.iter_mut().zip(&labels) {
        planned.push(crate::lowered::plan(
            label,
            config,
            &mut stdin,
            remote.as_ref(),
            &events,
        )?);
    }

    let store = Arc::new(
        Store::open(&first.store_root).map_err(|source| BuildError::Store {
            root: first.store_root.clone(),
            source,
        })?,
    );
    let retries = retry_notices(&events);
    let transfers = transfer_progress(&events);
    let source = Arc::new(
        RegistrySource::new(
            Arc::clone(&store),
            first.settings.registries.clone(),
            first.privileges,
        )
        .with_pull(configs.iter().any(|c| c.pull))
        .with_retry_observer(retries.clone())
        .with_transfer_observer(transfers.clone()),
    );

    // Every base image once: lowering needs their configs, the solver their digests.
    let mut resolved = Vec::new();
    let mut lowered = Vec::with_capacity(planned.len());
    for ((planned, config), label) in planned.into_iter().zip(&configs).zip(&labels) {
        lowered.push(crate::lowered::lower(
            label,
            planned,
            config,
            source.as_ref(),
            &store,
            &events,
            &mut resolved,
        )?);
    }

    let images: Vec<Vec<ImageConfig>> = lowered.iter().map(|l| l.images.clone()).collect();
    let joint = crate::joint::join(&mut lowered, &configs, &labels, remote.as_ref())?;
    let crate::joint::Joint {
        graph,
        targets: solve_targets,
        ranges,
        per_target,
        contexts,
    } = joint;

    let default_network = graph.vertices.iter().any(|v| {
        matches!(&v.op, rbuild_graph::Op::Exec(exec) if exec.network == rbuild_graph::NetworkMode::Default)
    });
    let executor = crate::runtime::executor(
        &first.runtime,
        first.snapshotter,
        first.isolation,
        first.privileges,
        &first.run_limits,
        default_network,
        &events,
    );
    // What provenance records of the build (kept only when asked).
    let attesting = configs.iter().any(|c| !c.attestations.is_empty());
    let provenance_resolved = if attesting {
        resolved.clone()
    } else {
        Vec::new()
    };
    let mut solver = Solver::new(
        Arc::clone(&store),
        executor,
        Arc::clone(&source) as Arc<dyn rbuild_solver::ports::ImageSource>,
        remote,
        first.privileges,
    )
    .with_resolved(resolved)
    .with_scope(&explain_scope(&first.context, &lowered[0].dockerfile.name))
    .with_explain_cache(first.explain_cache);
    for config in &mut configs {
        let mounts = std::mem::take(&mut config.mounts);
        solver = solver
            .with_secrets(mounts.secrets)
            .with_ssh(mounts.ssh)
            .with_allow_insecure(mounts.allow_insecure || first.mounts.allow_insecure);
    }
    for (name, ctx) in &contexts {
        solver = solver.with_context(name, Arc::clone(ctx));
    }
    if let Some(jobs) = first.jobs {
        solver = solver.with_jobs(jobs);
    }
    let registries = crate::cache::Registries {
        config: &first.settings.registries,
        retries: &retries,
    };
    let cache_from: Vec<_> = configs.iter().flat_map(|c| c.cache_from.clone()).collect();
    if let Some(exchange) =
        crate::cache::importer(&store, first.privileges, &cache_from, &registries, &events)
    {
        solver = solver.with_cache_exchange(exchange);
    }
    let solver = Arc::new(solver);
    let step_events: rbuild_solver::EventSink = {
        let events = Arc::clone(&events);
        Arc::new(move |e| events(BuildEvent::Step(e)))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BuildError::Runtime)?;
    let result = runtime.block_on(solver.solve_targets(
        Arc::clone(&graph),
        solve_targets.clone(),
        step_events,
    ));
    // Whatever happened, keep the digests hashed so far for the next build.
    for (_, ctx) in &contexts {
        if let Err(e) = ctx.save_stat_cache() {
            events(BuildEvent::Warning(Warning::StatCache(e)));
        }
    }
    let result = result.map_err(|e| {
        // The failing step's Dockerfile is the one its span points into.
        let at = match &e {
            rbuild_solver::SolveError::Vertex { vertex, .. } => {
                ranges.iter().position(|r| r.contains(vertex))
            }
            _ => None,
        };
        BuildError::Solve {
            source: Box::new(e),
            dockerfile: lowered[at.unwrap_or(0)].dockerfile.clone(),
        }
    })?;

    let mut exported_all = Vec::with_capacity(configs.len());
    let mut results = result.targets.iter();
    let mut first_target = 0;
    for (i, config) in configs.iter().enumerate() {
        let started = Instant::now();
        let n_targets = lowered[i].platforms.len();
        let record = crate::attest::BuildRecord {
            graph: &graph,
            targets: &solve_targets[first_target..first_target + n_targets],
            resolved: &provenance_resolved,
            dockerfile_name: &lowered[i].dockerfile.name,
            dockerfile: &lowered[i].dockerfile.bytes,
            started: build_started,
        };
        first_target += n_targets;
        let built: Vec<crate::export::Built> = lowered[i]
            .platforms
            .iter()
            .zip(results.by_ref())
            .zip(images[i].iter().cloned())
            .map(|((platform, target), image)| crate::export::Built {
                platform: platform.clone(),
                layers: target.layers.clone(),
                image,
            })
            .collect();
        let exported = export(
            &store,
            &built,
            &result.steps,
            config,
            &record,
            &mut stdout,
            &Network {
                retries: retries.clone(),
                transfers: transfers.clone(),
                images: &source,
            },
        )?;
        let label = &labels[i];
        internal(&events, label("exporting to image"), started);
        if !config.cache_to.is_empty() {
            let started = Instant::now();
            let finished = crate::cache::Finished {
                steps: &result.steps,
                images: &exported.images,
                cache_mount_ids: &crate::cache::cache_mount_ids(&per_target[i]),
            };
            crate::cache::export(
                &store,
                config.privileges,
                &config.cache_to,
                &finished,
                &registries,
                &events,
            )?;
            internal(&events, label("exporting cache"), started);
        }
        exported_all.push(exported);
    }
    crate::gc::auto_gc(&store, &first.settings.gc, &events);
    Ok(exported_all)
}

/// How a target's step names are written (its name in front, in a bake of several).
pub(crate) type Label = Box<dyn Fn(&str) -> String>;

pub(crate) fn internal(events: &EventSink, name: String, started: Instant) {
    events(BuildEvent::Internal {
        name,
        seconds: started.elapsed().as_secs_f64(),
    });
}

/// What names a build across runs for `--explain-cache`: the context and the Dockerfile.
fn explain_scope(context: &ContextSpec, dockerfile: &str) -> String {
    let canonical = |p: &str| {
        std::fs::canonicalize(p).map_or_else(|_| p.to_string(), |c| c.display().to_string())
    };
    format!(
        "{}\n{}",
        canonical(&context.origin()),
        canonical(dockerfile)
    )
}

/// `name` of a vertex under `prefix` (a platform, a bake target): `[stage 2/3] RUN x` becomes
/// `[linux/arm64 stage 2/3] RUN x`, as BuildKit and buildx name them.
pub(crate) fn with_prefix(prefix: &str, name: &str) -> String {
    match name.strip_prefix('[') {
        Some(rest) => format!("[{prefix} {rest}"),
        None => format!("[{prefix}] {name}"),
    }
}

pub(crate) fn short_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
