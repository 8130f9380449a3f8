//! Why a build failed, by kind. Each error's text names what was being done and its cause
//! (the cause is also its `source()`, so a report can walk the chain); the kinds let the
//! caller tell a wrong request ([`BuildError::is_usage`]) from a failed build, and find the
//! failed step or the full disk in the chain.

use std::path::PathBuf;

use rbuild_cache::CacheError;
use rbuild_context::ContextError;
use rbuild_frontend::Diagnostics;
use rbuild_solver::ports::SourceError;
use rbuild_solver::SolveError;
use rbuild_types::ImageRef;

use crate::config::ConfigError;
use crate::export::ExportError;
use crate::inputs::{DockerfileSource, InputError};

/// Every way a build can fail.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The config cannot be built as given.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Dockerfile or the context could not be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The Dockerfile has errors.
    #[error(transparent)]
    Dockerfile(Box<DockerfileError>),
    /// The `check` option (`# check=`, `BUILDKIT_DOCKERFILE_CHECK`) cannot be read.
    #[error("failed to parse check options: {source}")]
    CheckOption {
        #[source]
        source: rbuild_frontend::lint::CheckConfigError,
    },
    /// `# check=error=true` and a check was violated: `lint violation found for rules: …`,
    /// at the first violation's `lines` of `dockerfile`.
    #[error("{message}")]
    CheckFailed {
        message: String,
        dockerfile: DockerfileSource,
        lines: (u32, u32),
    },
    #[error("opening the store at {}: {source}", root.display())]
    Store {
        root: PathBuf,
        #[source]
        source: CacheError,
    },
    #[error("failed to resolve source metadata for {reference}: {source}")]
    Resolve {
        reference: Box<ImageRef>,
        #[source]
        source: SourceError,
    },
    /// A named context (`--build-context`) could not be resolved (an `oci-layout://` image).
    #[error("failed to load build context {name}: {source}")]
    NamedImage {
        name: String,
        #[source]
        source: SourceError,
    },
    /// A named filesystem context could not be opened (walked, cloned or downloaded).
    #[error("build context {name} ({origin}): {source}")]
    NamedContext {
        name: String,
        origin: String,
        #[source]
        source: ContextError,
    },
    /// The context directory could not be read (its `.dockerignore`, or the walk).
    #[error("build context {}: {source}", dir.display())]
    Context {
        dir: PathBuf,
        #[source]
        source: ContextError,
    },
    #[error("starting the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A step failed (or the solve could not go on); `dockerfile` is what its span points into.
    #[error("failed to solve: {source}")]
    Solve {
        #[source]
        source: Box<SolveError>,
        dockerfile: DockerfileSource,
    },
    /// A `--cache-to` could not be written (and `ignore-error` was not set).
    #[error(transparent)]
    CacheExport(#[from] rbuild_solver::ports::CacheExchangeError),
    /// The result could not be committed, named, written or pushed.
    #[error(transparent)]
    Export(#[from] ExportError),
}

impl BuildError {
    /// Whether the request itself was wrong (a bad config, a missing Dockerfile or context
    /// directory), rather than the build failing: the binary's exit status 2.
    pub fn is_usage(&self) -> bool {
        match self {
            BuildError::Config(_) => true,
            BuildError::Input(e) => e.is_usage(),
            _ => false,
        }
    }
}

/// A Dockerfile with errors: its text renders every diagnostic with the file's line and a
/// caret under the column.
#[derive(Debug, thiserror::Error)]
#[error("{}", diagnostics.render(&file.name, &file.bytes))]
pub struct DockerfileError {
    pub file: DockerfileSource,
    pub diagnostics: Diagnostics,
}

impl BuildError {
    /// The error for `diagnostics` in `file`.
    pub(crate) fn dockerfile(file: &DockerfileSource, diagnostics: Diagnostics) -> BuildError {
        BuildError::Dockerfile(Box::new(DockerfileError {
            file: file.clone(),
            diagnostics,
        }))
    }
}
