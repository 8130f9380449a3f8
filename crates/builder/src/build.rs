//! [`build`]: one build, in the order it runs — read the Dockerfile, parse and plan it, open
//! the store, resolve the base images through the frontend's resolver (ONBUILD included),
//! lower to a graph, open the context if a step reads it, wire the solver to the sandbox, the
//! image source and the remote source, solve, export, and collect garbage if configured.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use rbuild_frontend::lint::{self, CheckInput, Ignored, Lint, Scope};
use rbuild_frontend::lower;
use rbuild_graph::ImageConfig;
use rbuild_solver::Solver;
use rbuild_types::Platform;

use crate::checks::IgnoreCheck;
use crate::config::{BuildConfig, ContextSpec};
use crate::context::{open_named, stat_cache_path, MAIN};
use crate::error::BuildError;
use crate::events::{retry_notices, transfer_progress, BuildEvent, EventSink, Warning};
use crate::export::{export, Exported, Network};
use crate::inputs::DockerfileSource;
use crate::resolver::SourceResolver;

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
pub fn build(mut config: BuildConfig, io: BuildIo) -> Result<Exported, BuildError> {
    config.check()?;
    config.options.contexts = config.named_contexts.keys().cloned().collect();
    let BuildIo {
        events,
        mut stdin,
        mut stdout,
    } = io;
    // HTTP and git downloads, for the context and the solver alike.
    let remote = crate::remote::remote_source(&config.settings.registries);
    let inputs = crate::inputs::open(
        &config.dockerfile,
        &config.context,
        &mut stdin,
        remote.as_ref(),
        &config.privileges,
        |dir| stat_cache_path(&config.store_root, dir),
    )?;
    let dockerfile = inputs.dockerfile;
    let bad_dockerfile = |d| BuildError::dockerfile(&dockerfile, d);

    let started = Instant::now();
    let df = rbuild_frontend::parse(&dockerfile.bytes).map_err(bad_dockerfile)?;
    let check = crate::checks::check_config(&config.options, &df)?;
    let ignored = IgnoreCheck::of(&inputs.context);
    let check_input = CheckInput {
        df: &df,
        source: &dockerfile.bytes,
        options: &config.options,
        config: &check,
        plan: None,
        bases: None,
        ignored: ignored.as_ref().map(|i| i as &dyn Ignored),
        scope: Scope::Needed,
    };
    // One plan per target platform (`--platform a,b`): the automatic platform args differ.
    let platforms = config.target_platforms();
    let mut plans = Vec::with_capacity(platforms.len());
    for platform in &platforms {
        let mut options = config.options.clone();
        options.platform = platform.clone();
        match lower::plan(&df, &options) {
            Ok(plan) => plans.push(plan),
            Err(d) => {
                // The checks that need no plan still report, before the error.
                let lints = lint::check(&CheckInput {
                    options: &options,
                    ..check_input
                });
                report_checks(&events, &dockerfile, lints);
                return Err(bad_dockerfile(d));
            }
        }
    }
    internal(
        &events,
        format!(
            "[internal] load build definition from {}",
            short_name(&dockerfile.name)
        ),
        started,
    );

    let (store, source) = crate::checks::image_source(&config)?;
    let retries = retry_notices(&events);
    let transfers = transfer_progress(&events);
    let source = Arc::new(
        source
            .with_retry_observer(retries.clone())
            .with_transfer_observer(transfers.clone()),
    );

    // Every base image once: lowering needs their configs, the solver their digests.
    let started = Instant::now();
    let mut resolver = SourceResolver::new(source.as_ref(), &store, &config.named_contexts);
    let mut all_bases = Vec::with_capacity(plans.len());
    for plan in &mut plans {
        match plan.resolve(&mut resolver) {
            Ok(bases) => all_bases.push(bases),
            Err(e) => {
                // The checks that ran before resolving still report, before the error.
                let lints = lint::check(&CheckInput {
                    options: &plan.options,
                    ..check_input
                });
                report_checks(&events, &dockerfile, lints);
                return Err(crate::checks::resolve_error(e, &dockerfile));
            }
        }
    }
    let resolved = resolver.into_resolved();
    // The checks of each platform's plan (BuildKit's lint runs as it converts each), a
    // violation found for several platforms once.
    let mut lints: Vec<Lint> = Vec::new();
    for (plan, bases) in plans.iter().zip(&all_bases) {
        let found = lint::check(&CheckInput {
            plan: Some(plan),
            bases: Some(bases),
            options: &plan.options,
            ..check_input
        });
        for l in found {
            if !lints.contains(&l) {
                lints.push(l);
            }
        }
    }
    lints.extend(crate::checks::base_platform_lints(
        &df, &plans, &resolved, &check,
    ));
    lints.sort_by_key(|l| l.lines.0);
    let violation = check.error.then(|| lint::error_message(&lints)).flatten();
    let first_line = lints.first().map(|l| l.lines);
    report_checks(&events, &dockerfile, lints);
    if let (Some(message), Some(lines)) = (violation, first_line) {
        return Err(BuildError::CheckFailed {
            message,
            dockerfile: dockerfile.clone(),
            lines,
        });
    }
    let mut graphs = Vec::with_capacity(plans.len());
    for (plan, bases) in plans.iter().zip(&all_bases) {
        graphs.push(lower::lower(plan, bases).map_err(bad_dockerfile)?);
    }
    if !resolved.is_empty() {
        internal(
            &events,
            "[internal] load metadata for base images".into(),
            started,
        );
    }
    let images: Vec<ImageConfig> = graphs.iter().map(|g| g.image.clone()).collect();
    let (graph, targets) = if graphs.len() == 1 {
        let graph = graphs.remove(0);
        let target = graph.target;
        (graph, vec![target])
    } else {
        // BuildKit's progress names: `[linux/arm64 build 2/3] RUN …`.
        rbuild_graph::concat(graphs, |i, name| with_platform(&platforms[i], name))
    };
    let graph = Arc::new(graph);

    let context = inputs.context.open_for(&graph)?.map(Arc::new);
    let named: Vec<(String, Arc<_>)> =
        open_named(&graph, &config.named_contexts, remote.as_ref(), |dir| {
            stat_cache_path(&config.store_root, dir)
        })?
        .into_iter()
        .map(|(name, ctx)| (name, Arc::new(ctx)))
        .collect();
    let executor = crate::runtime::executor(
        &config.runtime,
        config.snapshotter,
        config.privileges,
        &events,
    );
    let mounts = std::mem::take(&mut config.mounts);
    let mut solver = Solver::new(
        Arc::clone(&store),
        executor,
        Arc::clone(&source) as Arc<dyn rbuild_solver::ports::ImageSource>,
        remote,
        config.privileges,
    )
    .with_resolved(resolved)
    .with_scope(&explain_scope(&config.context, &dockerfile.name))
    .with_explain_cache(config.explain_cache)
    .with_secrets(mounts.secrets)
    .with_ssh(mounts.ssh)
    .with_allow_insecure(mounts.allow_insecure);
    if let Some(ctx) = &context {
        solver = solver.with_context(MAIN, Arc::clone(ctx));
    }
    for (name, ctx) in &named {
        solver = solver.with_context(name, Arc::clone(ctx));
    }
    if let Some(jobs) = config.jobs {
        solver = solver.with_jobs(jobs);
    }
    let registries = crate::cache::Registries {
        config: &config.settings.registries,
        retries: &retries,
    };
    if let Some(exchange) = crate::cache::importer(
        &store,
        config.privileges,
        &config.cache_from,
        &registries,
        &events,
    ) {
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
    let result = runtime.block_on(solver.solve_targets(Arc::clone(&graph), targets, step_events));
    // Whatever happened, keep the digests hashed so far for the next build.
    for ctx in context.iter().chain(named.iter().map(|(_, c)| c)) {
        if let Err(e) = ctx.save_stat_cache() {
            events(BuildEvent::Warning(Warning::StatCache(e)));
        }
    }
    let result = result.map_err(|e| BuildError::Solve {
        source: Box::new(e),
        dockerfile: dockerfile.clone(),
    })?;

    let started = Instant::now();
    let built: Vec<crate::export::Built> = platforms
        .iter()
        .zip(&result.targets)
        .zip(images)
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
        &config,
        &mut stdout,
        &Network {
            retries: retries.clone(),
            transfers: transfers.clone(),
            images: &source,
        },
    )?;
    internal(&events, "exporting to image".into(), started);
    if !config.cache_to.is_empty() {
        let started = Instant::now();
        let finished = crate::cache::Finished {
            steps: &result.steps,
            images: &exported.images,
            cache_mount_ids: &crate::cache::cache_mount_ids(&graph),
        };
        crate::cache::export(
            &store,
            config.privileges,
            &config.cache_to,
            &finished,
            &registries,
            &events,
        )?;
        internal(&events, "exporting cache".into(), started);
    }
    crate::gc::auto_gc(&store, &config.settings.gc, &events);
    Ok(exported)
}

/// Sends the build checks' violations (none is sent when there are none).
fn report_checks(events: &EventSink, dockerfile: &DockerfileSource, lints: Vec<Lint>) {
    if !lints.is_empty() {
        events(BuildEvent::Checks {
            file: dockerfile.clone(),
            lints,
        });
    }
}

fn internal(events: &EventSink, name: String, started: Instant) {
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

/// `name` of a vertex of `platform`'s graph in a multi-platform build: `[stage 2/3] RUN x`
/// becomes `[linux/arm64 stage 2/3] RUN x`, as BuildKit names them.
fn with_platform(platform: &Platform, name: &str) -> String {
    match name.strip_prefix('[') {
        Some(rest) => format!("[{platform} {rest}"),
        None => format!("[{platform}] {name}"),
    }
}

fn short_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
