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
    /// The context is too big for the compact in-memory table.
    #[error("build context {root} is too large: {detail}")]
    TooLarge { root: PathBuf, detail: &'static str },
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
    /// An entry the extractor refuses (its type, a header field, a name that is not one).
    #[error("unpacking the build context archive: {source}")]
    ArchiveEntry {
        #[source]
        source: rbuild_archive::ArchiveError,
    },
    /// An entry could not be written into the context's directory.
    #[error("unpacking the build context archive: {source}")]
    ArchiveWrite {
        #[source]
        source: rbuild_archive::DirSinkError,
    },
    /// The context archive ends early (inside an entry, a compressed stream, or before the
    /// end-of-archive marker).
    #[error("the {format} build context archive is truncated: {detail}")]
    ArchiveTruncated {
        format: &'static str,
        detail: String,
    },
    /// An archive entry would land outside the context root.
    #[error("build context archive entry {entry:?} is rejected: {detail}")]
    ArchiveEntryEscapes { entry: String, detail: String },
    /// The named Dockerfile is not in the context that should carry it.
    #[error("{source_desc} has no Dockerfile {name:?}")]
    MissingDockerfile { name: String, source_desc: String },
    /// A git context URL cannot be understood.
    #[error("invalid git context URL {url:?}: {problem}")]
    BadGitUrl { url: String, problem: String },
    /// Checking out a git context failed (the error names the remote).
    #[error("git context: {0}")]
    Git(#[source] rbuild_ports::GitError),
    /// The subdirectory named after `:` in a git URL is missing or leaves the repository.
    #[error("git context {url}: subdirectory {subdir:?} {problem}")]
    GitSubdir {
        url: String,
        subdir: String,
        problem: &'static str,
    },
    /// Writing a listing of the context failed.
    #[error("writing the build context listing: {source}")]
    Output {
        #[source]
        source: io::Error,
    },
    /// Downloading a URL context failed: no success answer (the error names the URL).
    #[error("downloading build context: {0}")]
    Download(#[source] rbuild_ports::HttpError),
    /// Downloading a URL context failed while reading the body.
    #[error("downloading build context {url}: {detail}")]
    Http { url: String, detail: String },
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
