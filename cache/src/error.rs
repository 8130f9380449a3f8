//! The one error type of the store. Every variant names what was being done and to which
//! path, digest or table, so a user-facing report can say where and why.

use std::path::PathBuf;

use rbuild_types::Digest;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("create directory", "rename", ...).
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The embedded index database failed.
    #[error("store index {path}: {action}: {source}")]
    Index {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    /// A record in the index could not be encoded or decoded.
    #[error("store index table {table}, key {key}: bad record: {source}")]
    Record {
        table: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// A stored string in the index is not a digest.
    #[error("store index table {table}, key {key}: bad digest: {source}")]
    RecordDigest {
        table: &'static str,
        key: String,
        #[source]
        source: rbuild_types::DigestError,
    },
    /// Written content does not have the digest the caller expected; nothing was published.
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// A published blob no longer hashes to its name (disk corruption or tampering).
    #[error("blob {path} is corrupt: its content hashes to {actual}")]
    CorruptBlob { path: PathBuf, actual: Digest },
    /// The blob is not in the store.
    #[error("blob {digest} is not in the store ({path})")]
    BlobNotFound { digest: Digest, path: PathBuf },
    /// Another process has the store open, so an exclusive operation cannot run now.
    #[error("store {root} is in use by another rbuild process; try again when it has finished")]
    Busy { root: PathBuf },
    /// A path given to the merged view is not absolute.
    #[error("image path {path} is not absolute")]
    RelativePath { path: PathBuf },
    /// Symlink resolution inside the image went around in circles.
    #[error("too many levels of symbolic links resolving {path} in the image")]
    TooManySymlinks { path: PathBuf },
    /// A path in the image could not be resolved for a reason other than a loop or a
    /// non-directory (an I/O error reading a layer).
    #[error(transparent)]
    Resolve(rbuild_types::root_path::ResolveError),
    /// A path in the image does not exist.
    #[error("{path}: no such file or directory in the image")]
    NotFound { path: PathBuf },
    /// A path in the image is not a directory where one was needed.
    #[error("{path}: not a directory in the image")]
    NotADirectory { path: PathBuf },
    /// A new cache mount's seed from outside the store (an imported cache) failed.
    #[error("seeding from the imported cache: {0}")]
    Seed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl CacheError {
    /// The operating system's error number behind this error, when it is an I/O error (also
    /// one inside the index database's error), so callers can recognise a full disk.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CacheError::Io { source, .. } => source.raw_os_error(),
            CacheError::Index { source, .. } => match source.as_ref() {
                redb::Error::Io(e) => e.raw_os_error(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Shorthand for mapping an I/O error with its action and path.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> CacheError {
    let path = path.into();
    move |source| CacheError::Io {
        action,
        path,
        source,
    }
}

impl From<rbuild_types::root_path::ResolveError> for CacheError {
    fn from(e: rbuild_types::root_path::ResolveError) -> Self {
        use rbuild_types::root_path::ResolveError;
        match e {
            ResolveError::TooManyLinks { path } => CacheError::TooManySymlinks { path },
            ResolveError::NotADirectory { at, .. } => CacheError::NotADirectory { path: at },
            e @ ResolveError::Io { .. } => CacheError::Resolve(e),
        }
    }
}
