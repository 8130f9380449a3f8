//! Why fetching a remote source failed.

use std::path::PathBuf;

use rbuild_cache::CacheError;

/// A failure of an `Http` or `Git` op. Each names the URL or remote it was about.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("fetching {url}: {detail}")]
    Http { url: String, detail: String },
    #[error("fetching {url}: server answered {status}")]
    HttpStatus { url: String, status: String },
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("unsupported checksum algorithm in {checksum:?} for {url}")]
    ChecksumAlgorithm { url: String, checksum: String },
    #[error("git {command} for {remote}: {detail}")]
    Git {
        remote: String,
        command: String,
        detail: String,
    },
    #[error(
        "{remote}: no branch or tag named {reference:?} (give a branch, a tag or a full commit id)"
    )]
    UnknownRef { remote: String, reference: String },
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
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    let path = path.into();
    move |source| RemoteError::Io {
        action,
        path,
        source,
    }
}
