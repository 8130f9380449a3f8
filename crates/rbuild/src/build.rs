//! `rbuild build`: Dockerfile + context → graph → solve → image in the store and/or outputs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rbuild_cache::Store;
use rbuild_context::BuildContext;
use rbuild_frontend::lower::{self, BuildOptions, ResolveError};
use rbuild_graph::{ImageConfig, NetworkMode};
use rbuild_oci::registry::config::RegistryConfig;
use rbuild_oci::source::RegistrySource;
use rbuild_solver::ports::ImageSource;
use rbuild_solver::Solver;
use rbuild_types::{ImageRef, Platform};

use crate::cli::{BuildArgs, NetworkArg, ProgressMode};
use crate::output::Output;
use crate::progress::Progress;
use crate::report::CliError;

/// The Dockerfile as read, kept for error reports.
pub struct DockerfileSource {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Runs a build. On failure returns the error and the Dockerfile (if it was read) for the report.
pub fn run(args: BuildArgs, store_root: &Path) -> Result<(), (CliError, Option<DockerfileSource>)> {
    // Usage errors first, before the context is read.
    let checked = Checked::of(&args).map_err(|e| (e, None))?;
    let (dockerfile, context) = load_inputs(&args, store_root).map_err(|e| (e, None))?;
    match build(args, checked, store_root, &dockerfile, context) {
        Ok(()) => Ok(()),
        Err(e) => Err((e, Some(dockerfile))),
    }
}

/// Reads the Dockerfile and opens the context, as `docker build` resolves them.
fn load_inputs(
    args: &BuildArgs,
    store_root: &Path,
) -> Result<(DockerfileSource, BuildContext), CliError> {
    let stdin_dockerfile = args.context == "-" || args.file.as_deref() == Some("-");
    let read_stdin = || -> Result<Vec<u8>, CliError> {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| {
            CliError::Usage(format!("reading the Dockerfile from standard input: {e}"))
        })?;
        Ok(buf)
    };
    if args.context == "-" {
        let bytes = read_stdin()?;
        if rbuild_context::detect_archive(&bytes).is_some() {
            // A tar (maybe compressed) on stdin is the whole context, Dockerfile included.
            let name = args.file.clone().unwrap_or_else(|| "Dockerfile".into());
            let ctx = BuildContext::from_tar(std::io::Cursor::new(bytes), Some(&name))
                .map_err(|e| CliError::Failed(format!("build context from standard input: {e}")))?;
            let root = ctx.root().map(Path::to_path_buf).unwrap_or_default();
            let path = root.join(name.trim_start_matches('/'));
            let bytes = std::fs::read(&path).map_err(|e| {
                CliError::Usage(format!(
                    "the context archive on standard input has no Dockerfile {name:?}: {e}"
                ))
            })?;
            return Ok((DockerfileSource { name, bytes }, ctx));
        }
        if args.file.as_deref().is_some_and(|f| f != "-") {
            return Err(CliError::Usage(
                "with a Dockerfile on standard input (`-`), -f cannot name another file".into(),
            ));
        }
        return Ok((
            DockerfileSource {
                name: "Dockerfile".into(),
                bytes,
            },
            BuildContext::empty(),
        ));
    }
    if let Some(inputs) = crate::context_source::remote_inputs(args)? {
        return Ok(inputs);
    }
    let dir = PathBuf::from(&args.context);
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "unable to prepare context: path {:?} not found",
            args.context
        )));
    }
    let (name, bytes, dockerfile_path) = if stdin_dockerfile {
        ("Dockerfile".to_string(), read_stdin()?, None)
    } else {
        let path = match &args.file {
            Some(f) => PathBuf::from(f),
            None => dir.join("Dockerfile"),
        };
        let bytes = std::fs::read(&path).map_err(|e| {
            CliError::Usage(format!("failed to read dockerfile {}: {e}", path.display()))
        })?;
        (path.display().to_string(), bytes, Some(path))
    };
    let ctx = BuildContext::from_dir(&dir, dockerfile_path.as_deref())
        .map_err(|e| CliError::Failed(format!("build context {}: {e}", dir.display())))?
        .with_stat_cache(&stat_cache_path(store_root, &dir));
    Ok((DockerfileSource { name, bytes }, ctx))
}

/// The stat cache of a context directory: one file per directory, under the store root.
fn stat_cache_path(store_root: &Path, dir: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let id = rbuild_types::Digest::of(canonical.as_os_str().as_encoded_bytes());
    store_root
        .join("context-stat")
        .join(format!("{}.json", &id.hex()[..32]))
}

/// The flags that can be wrong, checked before anything is read or built.
struct Checked {
    build_args: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    outputs: Vec<Output>,
}

impl Checked {
    fn of(args: &BuildArgs) -> Result<Checked, CliError> {
        let outputs = args
            .outputs
            .iter()
            .map(|o| Output::parse(o).map_err(|e| CliError::Usage(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut to_stdout = outputs.iter().filter(|o| o.to_stdout());
        if let Some(first) = to_stdout.next() {
            if to_stdout.next().is_some() {
                return Err(CliError::Usage(
                    "multiple outputs configured to write to standard output (dest=-)".into(),
                ));
            }
            crate::stdio::refuse_terminal_stdout(&format!(
                "-o type={}: dest=- would write the archive to a terminal; redirect standard output or give dest=FILE",
                first.kind()
            ))?;
        }
        Ok(Checked {
            build_args: key_values(&args.build_args, "build-arg")?,
            labels: key_values(&args.labels, "label")?,
            outputs,
        })
    }
}

/// `KEY=value` items of a repeatable flag; an empty KEY is a usage error (as in docker and
/// buildx: `--build-arg =x` names nothing).
fn key_values(items: &[String], what: &str) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for item in items {
        let name = item.split_once('=').map_or(item.as_str(), |(k, _)| k);
        if name.is_empty() {
            return Err(CliError::Usage(format!(
                "invalid --{what} {item:?}: the name before '=' is empty"
            )));
        }
        match item.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            // `--build-arg NAME` takes the value from the environment, if set.
            None if what == "build-arg" => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            None => {
                return Err(CliError::Usage(format!(
                    "invalid --{what} {item:?}: expected KEY=value"
                )))
            }
        }
    }
    Ok(out)
}

fn build(
    args: BuildArgs,
    checked: Checked,
    store_root: &Path,
    dockerfile: &DockerfileSource,
    context: BuildContext,
) -> Result<(), CliError> {
    let outputs = checked.outputs;
    let tags = args
        .tags
        .iter()
        .map(|t| ImageRef::parse(t).map_err(|e| CliError::Usage(format!("invalid tag {t:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let platform = match &args.platform {
        Some(p) => {
            let p: Platform = p
                .parse()
                .map_err(|e: rbuild_types::PlatformError| CliError::Usage(e.to_string()))?;
            if p != Platform::host() {
                return Err(CliError::Usage(format!(
                    "platform {p} is not supported yet: rbuild builds for the host platform {}",
                    Platform::host()
                )));
            }
            p
        }
        None => Platform::host(),
    };
    let grants = crate::secrets::MountGrants::from_args(&args)?;
    let mode = if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress
    };
    let progress = Arc::new(Progress::new(mode));

    let started = Instant::now();
    let df = rbuild_frontend::parse(&dockerfile.bytes)
        .map_err(|d| CliError::Dockerfile(d.render(&dockerfile.name, &dockerfile.bytes)))?;
    let options = BuildOptions {
        build_args: checked.build_args,
        target: args.target.clone(),
        platform: platform.clone(),
        no_cache: args.no_cache,
        no_cache_filter: args.no_cache_filter.clone(),
        labels: checked.labels,
        network: match args.network {
            NetworkArg::Default => NetworkMode::Default,
            NetworkArg::None => NetworkMode::None,
            NetworkArg::Host => NetworkMode::Host,
        },
    };
    let mut plan = lower::plan(&df, &options)
        .map_err(|d| CliError::Dockerfile(d.render(&dockerfile.name, &dockerfile.bytes)))?;
    progress.internal(
        &format!(
            "[internal] load build definition from {}",
            short_name(&dockerfile.name)
        ),
        started.elapsed().as_secs_f64(),
    );

    let store = Arc::new(Store::open(store_root).map_err(|e| {
        CliError::Failed(format!(
            "opening the store at {}: {e}",
            store_root.display()
        ))
    })?);
    let registries = RegistryConfig::load().map_err(|e| CliError::Failed(e.to_string()))?;
    let source = Arc::new(RegistrySource::new(Arc::clone(&store), registries).with_pull(args.pull));

    // Resolve every base image once: lowering needs their configs, the solver their digests.
    let started = Instant::now();
    let mut resolved = Vec::new();
    let mut resolver = |reference: &ImageRef, platform: &Platform| {
        let r = source.resolve(reference, platform)?;
        let config = r.config.clone();
        resolved.push(r);
        Ok::<_, rbuild_solver::ports::SourceError>(config)
    };
    let bases = plan.resolve(&mut resolver).map_err(|e| match e {
        ResolveError::Dockerfile(d) => {
            CliError::Dockerfile(d.render(&dockerfile.name, &dockerfile.bytes))
        }
        ResolveError::Image { reference, source } => CliError::Failed(format!(
            "failed to resolve source metadata for {reference}: {source}"
        )),
    })?;
    if !resolved.is_empty() {
        progress.internal(
            "[internal] load metadata for base images",
            started.elapsed().as_secs_f64(),
        );
    }
    let graph = lower::lower(&plan, &bases)
        .map_err(|d| CliError::Dockerfile(d.render(&dockerfile.name, &dockerfile.bytes)))?;

    let context_for_cache = Arc::new(context);
    let runtime = crate::executor::parse_runtime(args.runtime.as_deref())?;
    let executor = crate::executor::executor(&runtime)?;
    let mut solver = Solver::new(Arc::clone(&store), executor, source)
        .with_context("context", Arc::clone(&context_for_cache))
        .with_resolved(resolved)
        .with_scope(&explain_scope(&args.context, &dockerfile.name))
        .with_explain_cache(args.explain_cache)
        .with_secrets(grants.secrets)
        .with_ssh(grants.ssh)
        .with_allow_insecure(grants.allow_insecure);
    if let Some(jobs) = args.jobs {
        solver = solver.with_jobs(jobs);
    }
    let solver = Arc::new(solver);
    let graph = Arc::new(graph);
    let events: rbuild_solver::EventSink = {
        let progress = Arc::clone(&progress);
        Arc::new(move |e| progress.event(e))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("starting the runtime: {e}")))?;
    let result = runtime.block_on(solver.solve(Arc::clone(&graph), events));
    // Whatever happened, keep the digests hashed so far for the next build.
    if let Err(e) = context_for_cache.save_stat_cache() {
        eprintln!("warning: could not save the context stat cache: {e}");
    }
    let result = result?;

    let started = Instant::now();
    export(
        &store,
        &result.layers,
        &graph.image,
        &tags,
        &outputs,
        &args,
        &progress,
    )?;
    progress.internal("exporting to image", started.elapsed().as_secs_f64());
    crate::gc_cmds::auto_gc(&store);
    Ok(())
}

/// What names a build across runs for `--explain-cache`: the context and the Dockerfile.
fn explain_scope(context: &str, dockerfile: &str) -> String {
    let canonical = |p: &str| {
        std::fs::canonicalize(p).map_or_else(|_| p.to_string(), |c| c.display().to_string())
    };
    format!("{}\n{}", canonical(context), canonical(dockerfile))
}

fn short_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn export(
    store: &Arc<Store>,
    layers: &[rbuild_cache::SnapshotId],
    config: &ImageConfig,
    tags: &[ImageRef],
    outputs: &[Output],
    args: &BuildArgs,
    _progress: &Progress,
) -> Result<(), CliError> {
    crate::image_out::export(store, layers, config, tags, outputs, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pairs_need_a_name() {
        let ok = key_values(&items(&["A=1", "B=", "C=x=y"]), "build-arg").unwrap();
        assert_eq!(ok["A"], "1");
        assert_eq!(ok["B"], "");
        assert_eq!(ok["C"], "x=y");
        for bad in ["=x", "=", ""] {
            let e = key_values(&items(&[bad]), "build-arg").unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(e.to_string().contains("--build-arg"), "{e}");
        }
        assert!(key_values(&items(&["=v"]), "label").is_err());
        assert!(key_values(&items(&["no-value"]), "label").is_err());
    }
}
