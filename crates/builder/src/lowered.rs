//! One target of a build, up to its graphs: the Dockerfile read (and the context's source
//! found, not walked), parsed, planned per target platform, its base images resolved through
//! the frontend's resolver (ONBUILD included) and lowered. A build has one such target; a
//! bake has several, which [`crate::build::build_all`] solves together.

use std::io::Read;
use std::time::Instant;

use rbuild_frontend::lower::{self, ResolveError};
use rbuild_graph::{Graph, ImageConfig};
use rbuild_oci::source::RegistrySource;
use rbuild_types::Platform;

use crate::config::BuildConfig;
use crate::context::{stat_cache_path, Context};
use crate::error::BuildError;
use crate::events::{BuildEvent, EventSink, Warning};
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
    let platforms = config.target_platforms();
    let mut plans = Vec::with_capacity(platforms.len());
    for platform in &platforms {
        let mut options = config.options.clone();
        options.platform = platform.clone();
        plans.push(lower::plan(&df, &options).map_err(bad_dockerfile)?);
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
        plans,
    } = planned;
    let bad_dockerfile = |d| BuildError::dockerfile(&dockerfile, d);
    let started = Instant::now();
    let mut resolver = SourceResolver::new(source, store, &config.named_contexts);
    let mut graphs = Vec::with_capacity(plans.len());
    for mut plan in plans {
        let bases = plan.resolve(&mut resolver).map_err(|e| match e {
            ResolveError::Dockerfile(d) => bad_dockerfile(d),
            ResolveError::Image { reference, source } => BuildError::Resolve {
                reference: Box::new(reference),
                source,
            },
            ResolveError::Context { name, source } => BuildError::NamedImage { name, source },
        })?;
        graphs.push(lower::lower(&plan, &bases).map_err(bad_dockerfile)?);
    }
    let found = resolver.into_resolved();
    for image in &found {
        let got = &image.config.platform;
        if got.os != image.platform.os || got.architecture != image.platform.architecture {
            events(BuildEvent::Warning(Warning::BaseImagePlatform {
                reference: image.reference.familiar(),
                found: got.to_string(),
                wanted: image.platform.to_string(),
            }));
        }
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
