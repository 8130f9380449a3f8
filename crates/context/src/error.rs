//! Everything that can go wrong while reading a build context.

use std::io;
use std::path::PathBuf;

use crate::dockerignore::PatternError;

/// A build-context failure, always naming the path or source involved.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A COPY/ADD source (without wildcards) that is absent or excluded by `.dockerignore`.
    #[error("failed to compute cache key: \"/{src}\": not found")]
    NotFound { src: String },
    /// Following symlinks in a COPY source did not end (more than 40 links).
    #[error("failed to compute cache key: \"/{src}\": too many levels of symbolic links")]
    SymlinkLoop { src: String },
    /// The context root is missing or not a directory.
    #[error("build context {path}: not a directory")]
    NotADirectory { path: PathBuf },
    /// Reading a file, directory, link or metadata failed.
    #[error("reading build context path {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The parallel directory walk reported an error.
    #[error("walking build context {root}: {source}")]
    Walk {
        root: PathBuf,
        #[source]
        source: ignore::Error,
    },
    /// A path (or symlink target) in the context is not valid UTF-8.
    #[error("build context path {path} is not valid UTF-8")]
    NonUtf8 { path: PathBuf },
    /// The `.dockerignore` file holds a bad pattern.
    #[error("{file}: {source}")]
    IgnoreFile {
        file: PathBuf,
        #[source]
        source: PatternError,
    },
    /// A pattern list given by the caller is bad.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// Reading or unpacking a context archive failed.
    #[error("unpacking the build context archive: {source}")]
    Archive {
        #[source]
        source: io::Error,
    },
    /// The context archive uses a compression we cannot read.
    #[error("build context archive is {format}-compressed, which rbuild cannot read yet (use an uncompressed, gzip or zstd tar)")]
    UnsupportedCompression { format: &'static str },
    /// A COPY/ADD source wildcard is malformed.
    #[error("invalid COPY source pattern {src:?}: {problem}")]
    BadSourcePattern {
        src: String,
        problem: crate::dockerignore::SyntaxProblem,
    },
}

impl ContextError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> ContextError {
        let path = path.into();
        move |source| ContextError::Io { path, source }
    }
}
