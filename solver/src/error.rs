//! Errors of a solve: which vertex failed, and why.

use rbuild_cache::{CacheError, SnapshotId};
use rbuild_graph::GraphError;
use rbuild_types::Span;

use crate::fileop::FileOpError;
use crate::ports::{ExecError, SourceError};

/// Why one vertex failed.
#[derive(Debug, thiserror::Error)]
pub enum VertexError {
    #[error("process \"{command}\" did not complete successfully: {source}")]
    Exec {
        command: String,
        #[source]
        source: ExecError,
    },
    #[error(transparent)]
    File(#[from] FileOpError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Context(#[from] rbuild_context::ContextError),
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    #[error("snapshot {} of an input is missing from the store", .0 .0)]
    MissingSnapshot(SnapshotId),
    #[error("build context {0:?} was not provided")]
    UnknownContext(String),
    #[error("internal error: image vertex ran without being resolved")]
    UnresolvedImage,
    #[error("internal task failure: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("canceled: another step failed")]
    Canceled,
    #[error("writing the step log {path}: {source}")]
    Log {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The step failed while the store's filesystem was full, the likely cause (a RUN's
    /// command writes its layer into the store). Shown as the failure it wraps.
    #[error("{source}")]
    StoreFull {
        store: std::path::PathBuf,
        #[source]
        source: Box<VertexError>,
    },
}

/// Why a solve failed.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("{name}: {source}")]
    Vertex {
        vertex: u32,
        name: String,
        span: Option<Span>,
        /// The last lines the step printed, for the error report.
        log_tail: Vec<String>,
        /// The file holding everything the step printed, if it printed anything.
        log_path: Option<std::path::PathBuf>,
        #[source]
        source: VertexError,
    },
    #[error("the build finished without a result for its target")]
    Unfinished,
    #[error("creating the build's log directory: {0}")]
    Logs(#[source] CacheError),
    #[error("invalid build graph: {0}")]
    Graph(#[from] GraphError),
}
