//! Turning failures into what the user reads, and into exit codes (0 ok, 1 build failed, 2
//! usage). [`CliError`] says which kind of failure it is; its chain of `source()`s carries the
//! causes, which the report appends where a message does not already end with them.

use std::fmt::Write as _;
use std::path::PathBuf;

use rbuild_builder::push::PushFailure;
use rbuild_builder::{BuildError, DockerfileError};
use rbuild_cache::CacheError;
use rbuild_context::ContextError;
use rbuild_oci::OciError;
use rbuild_solver::ports::SourceError;
use rbuild_solver::SolveError;
use rbuild_types::Digest;

use crate::usage::UsageError;

/// A failure of a command, with everything needed to explain it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong usage (bad flag values, missing files named on the command line): exit 2.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A build failed (exit 1), or was asked for wrongly (exit 2, [`BuildError::is_usage`]).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The Dockerfile has errors (`rbuild debug parse`).
    #[error(transparent)]
    Dockerfile(Box<DockerfileError>),
    /// The configuration file cannot be read.
    #[error(transparent)]
    Settings(#[from] rbuild_oci::registry::ConfigError),
    #[error("opening the store at {}: {source}", root.display())]
    OpenStore {
        root: PathBuf,
        #[source]
        source: CacheError,
    },
    /// An operation of a store command failed.
    #[error(transparent)]
    Store(#[from] CacheError),
    /// An image in the store could not be found, listed or named.
    #[error(transparent)]
    Image(#[from] OciError),
    /// An archive could not be written (`save`) or read (`load`).
    #[error("{step}: {source}")]
    Archive {
        step: ArchiveStep,
        #[source]
        source: OciError,
    },
    #[error("pulling {reference}: {source}")]
    Pull {
        reference: String,
        #[source]
        source: PullError,
    },
    #[error(transparent)]
    Push(#[from] PushFailure),
    /// `rbuild login`/`logout`: checking or storing credentials.
    #[error(transparent)]
    Registry(#[from] rbuild_oci::registry::RegistryError),
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("image config {id}: invalid JSON: {source}")]
    ConfigJson {
        id: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("formatting JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A `--format` template failed on an image (`{{index .RepoDigests 0}}` of none).
    #[error(transparent)]
    Render(#[from] crate::format::RenderError),
    /// `rbuild debug context`.
    #[error("build context {}: {source}", dir.display())]
    Context {
        dir: PathBuf,
        #[source]
        source: ContextError,
    },
    /// Writing the listing of `rbuild debug context`.
    #[error(transparent)]
    Listing(ContextError),
    /// `--call=check` found violations (already printed): exit status 1, as buildx's.
    #[error("the build checks found violations")]
    ChecksFound,
}

/// What an archive command was doing.
#[derive(Debug)]
pub enum ArchiveStep {
    Writing(PathBuf),
    Loading(PathBuf),
}

impl std::fmt::Display for ArchiveStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveStep::Writing(p) => write!(f, "writing {}", p.display()),
            ArchiveStep::Loading(p) => write!(f, "loading {}", p.display()),
        }
    }
}

/// Why `rbuild pull` failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Resolving or downloading the image.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Naming it in the store.
    #[error(transparent)]
    Store(#[from] OciError),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Build(e) if e.is_usage() => 2,
            _ => 1,
        }
    }

    /// The text printed to stderr.
    pub fn render(&self) -> String {
        match self {
            CliError::Build(BuildError::Solve { source, dockerfile }) => match source.as_ref() {
                SolveError::Vertex {
                    name,
                    span,
                    log_tail,
                    log_path,
                    source,
                    ..
                } => {
                    let file = (dockerfile.name.as_str(), dockerfile.bytes.as_slice());
                    let mut out =
                        render_vertex_failure(name, span.as_ref(), log_tail, source, file);
                    if let Some(path) = log_path {
                        let _ = write!(out, "\nfull log of the step: {}", path.display());
                    }
                    out
                }
                other => format!("ERROR: failed to solve: {other}"),
            },
            CliError::Build(BuildError::Dockerfile(d)) => d.to_string(),
            CliError::Build(BuildError::CheckFailed {
                message,
                dockerfile,
                lines,
            }) => {
                // As buildx shows an error with a source: the lines, then the error.
                let lines = crate::source_excerpt::excerpt(
                    &dockerfile.name,
                    &dockerfile.bytes,
                    *lines,
                    None,
                );
                format!("{lines}ERROR: failed to solve: {message}")
            }
            CliError::ChecksFound => String::new(),
            CliError::Dockerfile(d) => d.to_string(),
            other => {
                let mut out = format!("ERROR: {other}");
                append_causes(&mut out, other);
                out
            }
        }
    }
}

/// A failed step: its last output lines, the Dockerfile line, then the error chain.
fn render_vertex_failure(
    name: &str,
    span: Option<&rbuild_types::Span>,
    log_tail: &[String],
    source: &rbuild_solver::VertexError,
    (file, src): (&str, &[u8]),
) -> String {
    let mut out = String::new();
    if !log_tail.is_empty() {
        let _ = writeln!(out, "------\n > {name}:");
        for line in log_tail {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "------");
    }
    if let Some(span) = span {
        let line_no = span.line as usize;
        if let Some(line) = src.split(|&b| b == b'\n').nth(line_no.saturating_sub(1)) {
            let _ = writeln!(out, "{file}:{line_no}");
            let _ = writeln!(out, "--------------------");
            let _ = writeln!(
                out,
                " {:>3} | >>> {}",
                line_no,
                String::from_utf8_lossy(line)
            );
            let _ = writeln!(out, "--------------------");
        }
    }
    let _ = write!(out, "ERROR: failed to solve: {name}: {source}");
    append_causes(&mut out, source);
    out
}

/// Appends the chain of causes of `err`, skipping a cause whose text is already at the end
/// (wrappers that repeat their source's message).
fn append_causes(out: &mut String, err: &dyn std::error::Error) {
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            let _ = write!(out, ": {text}");
        }
        cause = c.source();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_appended_once() {
        // A wrapper that repeats its cause shows it once; a deeper cause it does not repeat
        // is added.
        let io = std::io::Error::from_raw_os_error(libc::EACCES);
        let e = CliError::OpenStore {
            root: "/s".into(),
            source: CacheError::Io {
                action: "create directory",
                path: "/s/tmp".into(),
                source: io,
            },
        };
        let text = e.render();
        assert!(
            text.starts_with("ERROR: opening the store at /s: create directory /s/tmp: "),
            "{text}"
        );
        assert_eq!(text.matches("Permission denied").count(), 1, "{text}");
        assert_eq!(e.exit_code(), 1);
    }
}
