//! Build checks (BuildKit's Dockerfile lint rules, run by `rbuild_frontend::lint`): in every
//! build, over the stages the target needs, and on their own with [`check`]
//! (`--call=check`), over every stage and without building.
//!
//! What the frontend cannot know comes from here: the `check` option (the
//! `BUILDKIT_DOCKERFILE_CHECK` build argument, else the `# check=` directive), the base
//! images' configs (resolved through the store and the registries, as a build resolves them),
//! the context's `.dockerignore` for `CopyIgnoredFile` ([`IgnoreCheck`]), and
//! `InvalidBaseImagePlatform`, which needs the platform a base image was pulled with.

use std::sync::Arc;

use rbuild_cache::Store;
use rbuild_context::dockerignore::{find_ignore_file, parse_ignore_file, PatternMatcher};
use rbuild_frontend::lint::{self, CheckConfig, CheckInput, Ignored, Lint, Rule, Scope};
use rbuild_frontend::lower::{self, BuildOptions, Plan, ResolveError, StageBase};
use rbuild_frontend::outline::{Outline, Target};
use rbuild_frontend::Dockerfile;
use rbuild_oci::source::RegistrySource;
use rbuild_solver::ports::{ResolvedImage, SourceError};

use crate::build::BuildIo;
use crate::config::BuildConfig;
use crate::context::Context;
use crate::error::BuildError;
use crate::inputs::DockerfileSource;
use crate::resolver::SourceResolver;

/// The build argument that replaces the `# check=` directive (as in BuildKit).
pub const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// What [`check`] found: the violations, and the error that stopped the evaluation (a
/// Dockerfile that does not parse or plan, a base image that cannot be resolved), after
/// which the violations found before it are still reported, as BuildKit does.
#[derive(Debug)]
pub struct CheckReport {
    pub file: DockerfileSource,
    pub lints: Vec<Lint>,
    pub error: Option<BuildError>,
}

/// The `check` option of this build.
pub(crate) fn check_config(
    options: &BuildOptions,
    df: &Dockerfile,
) -> Result<CheckConfig, BuildError> {
    let text = match options.build_args.get(CHECK_BUILD_ARG) {
        Some(v) => v.as_str(),
        None => df
            .directives
            .iter()
            .find(|d| d.name == "check")
            .map_or("", |d| d.value.as_str()),
    };
    CheckConfig::parse(text).map_err(|source| BuildError::CheckOption { source })
}

/// `.dockerignore` as `CopyIgnoredFile` asks it (BuildKit's `validateCopySourcePath`).
pub(crate) struct IgnoreCheck(PatternMatcher);

impl IgnoreCheck {
    /// The matcher of the context's ignore file: a context directory's (`<Dockerfile>.dockerignore`
    /// first), or the `.dockerignore` at the root of an unpacked archive or a checkout; `None`
    /// without one, for the empty context, or when it cannot be read (opening the context
    /// reports that).
    pub(crate) fn of(context: &Context) -> Option<IgnoreCheck> {
        let file = match context {
            Context::Dir {
                dir, dockerfile, ..
            } => find_ignore_file(dir, dockerfile.as_deref()).ok()??,
            Context::Ready(ctx) => find_ignore_file(ctx.root()?, None).ok()??,
        };
        let bytes = std::fs::read(file).ok()?;
        let patterns = parse_ignore_file(&String::from_utf8_lossy(&bytes));
        let matcher = PatternMatcher::new(&patterns).ok()?;
        (!matcher.is_empty() && !matcher.has_exclusions()).then_some(IgnoreCheck(matcher))
    }
}

impl Ignored for IgnoreCheck {
    fn ignored(&self, path: &str) -> bool {
        if path == "." || path == "/" {
            // The root is only "excluded" by a pattern that excludes everything.
            return self
                .0
                .patterns()
                .iter()
                .any(|p| !p.is_exclusion() && matches!(p.text(), "*" | "**" | "**/*"));
        }
        self.0.matches_or_parent_matches(path)
    }
}

/// `InvalidBaseImagePlatform` for each resolved base whose config is for another platform
/// than asked, at the `FROM` of each stage built on it.
pub(crate) fn base_platform_lints(
    df: &Dockerfile,
    plans: &[Plan],
    resolved: &[ResolvedImage],
    config: &CheckConfig,
) -> Vec<Lint> {
    let mut out = Vec::new();
    if !config.enabled(Rule::InvalidBaseImagePlatform) {
        return out;
    }
    for image in resolved {
        let found = &image.config.platform;
        if found.os == image.platform.os && found.architecture == image.platform.architecture {
            continue;
        }
        // BuildKit names the image as the FROM wrote it (expanded).
        let message = |name: &str| {
            format!(
                "Base image {name} was pulled with platform {:?}, expected {:?} for current build",
                found.to_string(),
                image.platform.to_string()
            )
        };
        let mut stages: Vec<(usize, u32)> = Vec::new();
        for plan in plans {
            for (i, st) in plan.stages.iter().enumerate() {
                let same = matches!(&st.base, StageBase::Image(r) if *r == image.reference);
                if same && plan.stage_platform(i) == image.platform {
                    let node = df
                        .instructions
                        .iter()
                        .find(|n| n.span.start == st.span.start);
                    let end = node.map_or(st.span.line, |n| n.end_line.max(n.span.line));
                    let written = node
                        .and_then(|n| n.args.first())
                        .and_then(|w| {
                            let env = rbuild_frontend::shell::EnvList(&plan.global_args);
                            rbuild_frontend::shell::process_word(w, &env, plan.escape).ok()
                        })
                        .unwrap_or_else(|| image.reference.familiar());
                    if !stages.iter().any(|(_, l)| *l == st.span.line) {
                        stages.push((i, st.span.line));
                        out.push(Lint {
                            rule: Rule::InvalidBaseImagePlatform,
                            message: message(&written),
                            span: st.span,
                            lines: (st.span.line, end),
                        });
                    }
                }
            }
        }
        if stages.is_empty() {
            // Read by `COPY --from` or a mount: no FROM to point at.
            out.push(Lint {
                rule: Rule::InvalidBaseImagePlatform,
                message: message(&image.reference.familiar()),
                span: Default::default(),
                lines: (0, 0),
            });
        }
    }
    out
}

/// Opens the store and the image source a build resolves base images through.
pub(crate) fn image_source(
    config: &BuildConfig,
) -> Result<(Arc<Store>, RegistrySource), BuildError> {
    let store = Arc::new(
        Store::open(&config.store_root).map_err(|source| BuildError::Store {
            root: config.store_root.clone(),
            source,
        })?,
    );
    let source = RegistrySource::new(
        Arc::clone(&store),
        config.settings.registries.clone(),
        config.privileges,
    )
    .with_pull(config.pull);
    Ok((store, source))
}

/// The build error of a failed [`Plan::resolve`].
pub(crate) fn resolve_error(
    e: ResolveError<SourceError>,
    dockerfile: &DockerfileSource,
) -> BuildError {
    match e {
        ResolveError::Dockerfile(d) => BuildError::dockerfile(dockerfile, d),
        ResolveError::Image { reference, source } => BuildError::Resolve {
            reference: Box::new(reference),
            source,
        },
        ResolveError::Context { name, source } => BuildError::NamedImage { name, source },
    }
}

/// The Dockerfile and the context of `config`, read as a build reads them.
fn read_inputs(config: &mut BuildConfig, io: BuildIo) -> Result<crate::inputs::Inputs, BuildError> {
    config.check()?;
    config.options.contexts = config.named_contexts.keys().cloned().collect();
    let BuildIo { mut stdin, .. } = io;
    let remote = crate::remote::remote_source(&config.settings.registries);
    Ok(crate::inputs::open(
        &config.dockerfile,
        &config.context,
        &mut stdin,
        remote.as_ref(),
        &config.privileges,
        |dir| crate::context::stat_cache_path(&config.store_root, dir),
    )?)
}

/// The options of `config` for its first target platform.
fn first_platform_options(config: &BuildConfig) -> BuildOptions {
    let mut options = config.options.clone();
    if let Some(p) = config.target_platforms().into_iter().next() {
        options.platform = p;
    }
    options
}

/// The stages of the Dockerfile (`--call=targets`); nothing is resolved.
pub fn targets(
    mut config: BuildConfig,
    io: BuildIo,
) -> Result<(DockerfileSource, Vec<Target>), BuildError> {
    let file = read_inputs(&mut config, io)?.dockerfile;
    let df = rbuild_frontend::parse(&file.bytes).map_err(|d| BuildError::dockerfile(&file, d))?;
    let list = rbuild_frontend::outline::targets(&df, &file.bytes);
    Ok((file, list))
}

/// The outline of the target (`--call=outline`): planned, nothing resolved.
pub fn outline(
    mut config: BuildConfig,
    io: BuildIo,
) -> Result<(DockerfileSource, Outline), BuildError> {
    let file = read_inputs(&mut config, io)?.dockerfile;
    let bad = |d| BuildError::dockerfile(&file, d);
    let df = rbuild_frontend::parse(&file.bytes).map_err(bad)?;
    let plan = lower::plan(&df, &first_platform_options(&config)).map_err(bad)?;
    let outline = rbuild_frontend::outline::outline(&df, &file.bytes, &plan);
    Ok((file, outline))
}

/// Evaluates the Dockerfile without building (`--call=check`): every stage is checked (with
/// `--target`, the stages it needs), the base images resolved (configs only, no layers),
/// nothing run. The target platform is the first of `--platform`.
pub fn check(mut config: BuildConfig, io: BuildIo) -> Result<CheckReport, BuildError> {
    let inputs = read_inputs(&mut config, io)?;
    let file = inputs.dockerfile;
    let df = match rbuild_frontend::parse(&file.bytes) {
        Ok(df) => df,
        Err(d) => {
            let error = Some(BuildError::dockerfile(&file, d));
            return Ok(CheckReport {
                file,
                lints: Vec::new(),
                error,
            });
        }
    };
    let check = check_config(&config.options, &df)?;
    let ignored = IgnoreCheck::of(&inputs.context);
    let options = first_platform_options(&config);
    let input = CheckInput {
        df: &df,
        source: &file.bytes,
        options: &options,
        config: &check,
        plan: None,
        bases: None,
        ignored: ignored.as_ref().map(|i| i as &dyn Ignored),
        scope: Scope::AllStages,
    };
    let mut plan = match lower::plan(&df, &options) {
        Ok(plan) => plan,
        Err(d) => {
            let lints = lint::check(&input);
            let error = Some(BuildError::dockerfile(&file, d));
            return Ok(CheckReport { file, lints, error });
        }
    };
    // Without --target every stage is checked (BuildKit: "for lint, no target means all
    // targets"), so every stage's base is resolved; with one, the stages it needs.
    let scope = if options.target.is_some() {
        Scope::Needed
    } else {
        plan.needed = (0..plan.stages.len()).collect();
        Scope::AllStages
    };
    let (store, source) = image_source(&config)?;
    let mut resolver = SourceResolver::new(&source, &store, &config.named_contexts);
    let (bases, error) = match plan.resolve(&mut resolver) {
        Ok(bases) => (Some(bases), None),
        Err(e) => (None, Some(resolve_error(e, &file))),
    };
    // Without the bases' configs the per-stage rules would guess their environment: as in
    // BuildKit, a failed resolution stops the evaluation before them.
    let mut lints = lint::check(&CheckInput {
        plan: bases.as_ref().map(|_| &plan),
        bases: bases.as_ref(),
        scope,
        ..input
    });
    let resolved = resolver.into_resolved();
    lints.extend(base_platform_lints(
        &df,
        std::slice::from_ref(&plan),
        &resolved,
        &check,
    ));
    lints.sort_by_key(|l| l.lines.0);
    Ok(CheckReport { file, lints, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(patterns: &[&str]) -> Option<IgnoreCheck> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".dockerignore"), patterns.join("\n")).expect("write");
        let context = Context::Dir {
            dir: dir.path().to_path_buf(),
            dockerfile: None,
            stat_cache: dir.path().join("stat"),
        };
        IgnoreCheck::of(&context)
    }

    #[test]
    fn dockerignore_as_copy_ignored_file_asks_it() {
        let check = ignore(&["secret.txt", "docs"]).expect("a matcher");
        assert!(check.ignored("secret.txt"));
        assert!(check.ignored("docs/readme.md"));
        assert!(!check.ignored("src/main.rs"));
        // The root only when everything is excluded.
        assert!(!check.ignored("."));
        assert!(ignore(&["*"]).expect("a matcher").ignored("."));
        // With an exception, BuildKit does not check at all.
        assert!(ignore(&["docs", "!docs/keep.md"]).is_none());
        assert!(ignore(&[]).is_none());
    }

    #[test]
    fn the_build_arg_replaces_the_directive() {
        let df = rbuild_frontend::parse(b"# check=skip=all\nFROM scratch\n").expect("parses");
        let mut options = BuildOptions::default();
        assert!(check_config(&options, &df).expect("config").skip_all);
        options
            .build_args
            .insert(CHECK_BUILD_ARG.into(), "error=true".into());
        let c = check_config(&options, &df).expect("config");
        assert!(c.error && !c.skip_all);
        options
            .build_args
            .insert(CHECK_BUILD_ARG.into(), "bogus".into());
        assert!(matches!(
            check_config(&options, &df),
            Err(BuildError::CheckOption { .. })
        ));
    }
}
