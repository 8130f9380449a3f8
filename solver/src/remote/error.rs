//! Why fetching a remote source failed.

use std::path::PathBuf;

use rbuild_cache::CacheError;
use rbuild_ports::{GitError, HttpError, PathIoError};

/// A failure of an `Http` or `Git` op. Each names the URL or remote it was about.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The GET itself failed: no answer, or not a success (the port's error).
    #[error(transparent)]
    Fetch(#[from] HttpError),
    /// Reading or storing the body failed, or it was cut short.
    #[error("fetching {url}: {detail}")]
    Http { url: String, detail: String },
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("unsupported checksum algorithm in {checksum:?} for {url}")]
    ChecksumAlgorithm { url: String, checksum: String },
    /// Resolving or checking out failed (the port's error: git's stderr, an unknown ref).
    #[error(transparent)]
    Git(#[from] GitError),
    /// BuildKit's message for an `ADD --checksum` of a git source that is not hex.
    #[error("invalid checksum {checksum} for Git URL, expected hex commit hash ({remote})")]
    GitChecksumFormat { remote: String, checksum: String },
    /// BuildKit's message when the resolved commit does not start with `ADD --checksum`.
    #[error("{remote}: expected checksum to match {expected}, got {actual}")]
    GitChecksum {
        remote: String,
        expected: String,
        actual: String,
    },
    #[error("{remote}: subdirectory {subdir:?} {problem}")]
    Subdir {
        remote: String,
        subdir: String,
        problem: &'static str,
    },
    #[error(transparent)]
    Io(#[from] PathIoError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    File(#[from] crate::fileop::FileOpError),
    #[error("internal error: {op} vertex ran without being resolved")]
    Unresolved { op: String },
}

/// Maps an io error on `path` while doing `action`.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> RemoteError {
    let f = PathIoError::on(action, path.into());
    move |e| RemoteError::Io(f(e))
}
