//! One target of a build, up to its graphs: the Dockerfile read (and the context's source
//! found, not walked), parsed, planned per target platform, its base images resolved through
//! the frontend's resolver (ONBUILD included) and lowered. A build has one such target; a
//! bake has several, which [`crate::build::build_all`] solves together.

use std::io::Read;
use std::time::Instant;

use rbuild_frontend::ast::Dockerfile;
use rbuild_frontend::lint::{self, CheckConfig, CheckInput, Ignored, Lint, Scope};
use rbuild_frontend::lower;
use rbuild_graph::{Graph, ImageConfig};
use rbuild_oci::source::RegistrySource;
use rbuild_types::Platform;

use crate::checks::IgnoreCheck;
use crate::config::BuildConfig;
use crate::context::{stat_cache_path, Context};
use crate::error::BuildError;
use crate::events::{BuildEvent, EventSink};
use crate::inputs::DockerfileSource;
use crate::resolver::SourceResolver;
use rbuild_cache::Store;
use rbuild_solver::ports::RemoteSource;

/// A target's Dockerfile parsed and planned, before its base images are resolved.
pub(crate) struct Planned {
    pub dockerfile: DockerfileSource,
    pub context: Context,
    pub platforms: Vec<Platform>,
    plans: Vec<lower::Plan>,
    /// The parsed file and its `check` option, for the build checks after resolving.
    df: Dockerfile,
    check: CheckConfig,
    ignored: Option<IgnoreCheck>,
}

/// A target lowered: one graph per platform, with the image config each one builds.
pub(crate) struct Lowered {
    pub dockerfile: DockerfileSource,
    /// Taken when the joined graph is built.
    pub context: Option<Context>,
    pub platforms: Vec<Platform>,
    pub graphs: Vec<Graph>,
    pub images: Vec<ImageConfig>,
}

/// Reads, parses and plans `config`'s Dockerfile (`label` names its progress steps) (one plan per target platform: the
/// automatic platform args differ).
pub(crate) fn plan(
    label: &dyn Fn(&str) -> String,
    config: &mut BuildConfig,
    stdin: &mut Option<Box<dyn Read>>,
    remote: &dyn RemoteSource,
    events: &EventSink,
) -> Result<Planned, BuildError> {
    config.check()?;
    config.options.contexts = config.named_contexts.keys().cloned().collect();
    let inputs = crate::inputs::open(
        &config.dockerfile,
        &config.context,
        stdin,
        remote,
        &config.privileges,
        |dir| stat_cache_path(&config.store_root, dir),
    )?;
    let dockerfile = inputs.dockerfile;
    let bad_dockerfile = |d| BuildError::dockerfile(&dockerfile, d);
    let started = Instant::now();
    let df = rbuild_frontend::parse(&dockerfile.bytes).map_err(bad_dockerfile)?;
    let check = crate::checks::check_config(&config.options, &df)?;
    let ignored = IgnoreCheck::of(&inputs.context);
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
                    df: &df,
                    source: &dockerfile.bytes,
                    options: &options,
                    config: &check,
                    plan: None,
                    bases: None,
                    ignored: ignored.as_ref().map(|i| i as &dyn Ignored),
                    scope: Scope::Needed,
                });
                report_checks(events, &dockerfile, lints);
                return Err(bad_dockerfile(d));
            }
        }
    }
    crate::build::internal(
        events,
        label(&format!(
            "[internal] load build definition from {}",
            crate::build::short_name(&dockerfile.name)
        )),
        started,
    );
    Ok(Planned {
        dockerfile,
        context: inputs.context,
        platforms,
        plans,
        df,
        check,
        ignored,
    })
}

/// Resolves the base images and named contexts of `planned` and lowers each plan; the
/// images resolved are added to `resolved` (the solver's list).
pub(crate) fn lower(
    label: &dyn Fn(&str) -> String,
    planned: Planned,
    config: &BuildConfig,
    source: &RegistrySource,
    store: &Store,
    events: &EventSink,
    resolved: &mut Vec<rbuild_solver::ports::ResolvedImage>,
) -> Result<Lowered, BuildError> {
    let Planned {
        dockerfile,
        context,
        platforms,
        mut plans,
        df,
        check,
        ignored,
    } = planned;
    let bad_dockerfile = |d| BuildError::dockerfile(&dockerfile, d);
    let started = Instant::now();
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
    let mut resolver = SourceResolver::new(source, store, &config.named_contexts);
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
                report_checks(events, &dockerfile, lints);
                return Err(crate::checks::resolve_error(e, &dockerfile));
            }
        }
    }
    let found = resolver.into_resolved();
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
        &df, &plans, &found, &check,
    ));
    lints.sort_by_key(|l| l.lines.0);
    let violation = check.error.then(|| lint::error_message(&lints)).flatten();
    let first_line = lints.first().map(|l| l.lines);
    report_checks(events, &dockerfile, lints);
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
    if !found.is_empty() {
        crate::build::internal(
            events,
            label("[internal] load metadata for base images"),
            started,
        );
    }
    resolved.extend(found);
    let images = graphs.iter().map(|g| g.image.clone()).collect();
    Ok(Lowered {
        dockerfile,
        context: Some(context),
        platforms,
        graphs,
        images,
    })
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
