//! Remote build contexts for `rbuild build`: a git URL (cloned with the `git` command) or an
//! http(s) URL to a context archive or a plain Dockerfile, classified like `docker build`
//! does (see `rbuild_context::ContextSource`). Local directories and `-` stay in `build.rs`.
//!
//! With a remote context, `-f PATH` is relative to the context root (as in Docker), and
//! `-f -` reads the Dockerfile from standard input.

use std::io::Read;
use std::path::Path;

use rbuild_context::{BuildContext, ContextSource};

use crate::build::DockerfileSource;
use crate::cli::BuildArgs;
use crate::report::CliError;

/// Opens the context when `args.context` is a git or http(s) URL; `Ok(None)` otherwise.
pub fn remote_inputs(
    args: &BuildArgs,
) -> Result<Option<(DockerfileSource, BuildContext)>, CliError> {
    let source = ContextSource::classify(&args.context)
        .map_err(|e| CliError::Usage(format!("unable to prepare context: {e}")))?;
    let from_stdin = args.file.as_deref() == Some("-");
    let name = match args.file.as_deref() {
        Some(f) if f != "-" => f.to_string(),
        _ => "Dockerfile".to_string(),
    };
    match source {
        ContextSource::Stdin | ContextSource::Dir(_) => Ok(None),
        ContextSource::Git(spec) => {
            let ctx = BuildContext::from_git(&spec, (!from_stdin).then_some(name.as_str()))
                .map_err(|e| CliError::Failed(format!("unable to prepare context: {e}")))?;
            let df = dockerfile(&ctx, &name, from_stdin, &args.context)?;
            Ok(Some((df, ctx)))
        }
        ContextSource::Url(url) => {
            let bytes = rbuild_context::fetch_url(&url)
                .map_err(|e| CliError::Failed(format!("unable to prepare context: {e}")))?;
            if rbuild_context::detect_archive(&bytes).is_none() {
                // Not an archive: the URL is the Dockerfile itself, the context is empty.
                if args.file.is_some() {
                    return Err(CliError::Usage(format!(
                        "{url} is a Dockerfile, not a context archive: -f cannot be used with it"
                    )));
                }
                let df = DockerfileSource { name: url, bytes };
                return Ok(Some((df, BuildContext::empty())));
            }
            let ctx = BuildContext::from_tar(
                std::io::Cursor::new(bytes),
                (!from_stdin).then_some(name.as_str()),
            )
            .map_err(|e| CliError::Failed(format!("unable to prepare context {url}: {e}")))?;
            let df = dockerfile(&ctx, &name, from_stdin, &url)?;
            Ok(Some((df, ctx)))
        }
    }
}

/// Reads the Dockerfile: from stdin for `-f -`, else `name` inside the unpacked context.
fn dockerfile(
    ctx: &BuildContext,
    name: &str,
    from_stdin: bool,
    origin: &str,
) -> Result<DockerfileSource, CliError> {
    if from_stdin {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| {
            CliError::Usage(format!("reading the Dockerfile from standard input: {e}"))
        })?;
        return Ok(DockerfileSource {
            name: "Dockerfile".into(),
            bytes,
        });
    }
    let root = ctx.root().unwrap_or(Path::new("."));
    let path = root.join(name.trim_start_matches('/'));
    let bytes = std::fs::read(&path).map_err(|e| {
        CliError::Usage(format!("context {origin} has no Dockerfile {name:?}: {e}"))
    })?;
    Ok(DockerfileSource {
        name: name.to_string(),
        bytes,
    })
}
