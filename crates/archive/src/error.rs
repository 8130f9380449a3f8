//! What can be wrong with an archive being read, and with a tar being written.
//!
//! Entry names are bytes; errors keep them as [`ByteString`]s and show them to people lossily
//! (U+FFFD for a stray byte), quoted.

use std::io;
use std::path::PathBuf;

use rbuild_types::ByteString;

/// An entry name (or link target) for a message: lossy, quoted.
pub(crate) fn show(name: &ByteString) -> String {
    format!("{:?}", name.lossy())
}

/// Why an entry name (or hard-link target) was refused by the sanitizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    Empty,
    Nul,
    /// Only under [`crate::NamePolicy::Strict`].
    Absolute,
    /// Only under [`crate::NamePolicy::Strict`].
    DotDot,
    ClimbsOut,
    /// A hard-link target naming the root directory itself.
    Root,
}

impl NameError {
    /// Why, as a phrase after the name ("… is an absolute path").
    pub fn reason(self) -> &'static str {
        match self {
            NameError::Empty => "is empty",
            NameError::Nul => "contains a NUL byte",
            NameError::Absolute => "is an absolute path",
            NameError::DotDot => "contains a \"..\" component",
            NameError::ClimbsOut => "climbs out of the root",
            NameError::Root => "names the root directory",
        }
    }
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for NameError {}

/// What is wrong with an archive being read. The destination's own failures are the sink's
/// errors ([`crate::ExtractError::Sink`]).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The stream (or its decoder) failed, or a header is not a tar header.
    #[error("reading the archive: {source}")]
    Read {
        #[source]
        source: io::Error,
    },
    /// The stream ended inside an entry, inside a compressed stream, or (where the caller
    /// requires one) before the end-of-archive marker.
    #[error("the archive is truncated: {detail}")]
    Truncated { detail: String },
    /// An entry's name was refused.
    #[error("archive entry {}: {reason}", show(entry))]
    Name {
        entry: ByteString,
        reason: NameError,
    },
    /// A hard link's target was refused.
    #[error(
        "archive entry {}: hard-link target {}: {reason}",
        show(entry),
        show(target)
    )]
    LinkTarget {
        entry: ByteString,
        target: ByteString,
        reason: NameError,
    },
    /// A symlink or hard link without a target (or a symlink target with a NUL byte).
    #[error("archive entry {}: a {kind} without a valid target", show(entry))]
    NoLinkTarget {
        entry: ByteString,
        kind: &'static str,
    },
    /// An entry type rbuild does not extract (GNU sparse files, volume labels, vendor types).
    #[error("archive entry {}: entry type {flag:?} is not supported", show(entry))]
    Unsupported { entry: ByteString, flag: char },
    /// A numeric header field that is not a number.
    #[error("archive entry {}: invalid {field} field", show(entry))]
    Header {
        entry: ByteString,
        field: &'static str,
    },
}

impl ArchiveError {
    /// The entry this error is about, if it is about one.
    pub fn entry(&self) -> Option<&ByteString> {
        match self {
            ArchiveError::Read { .. } | ArchiveError::Truncated { .. } => None,
            ArchiveError::Name { entry, .. }
            | ArchiveError::LinkTarget { entry, .. }
            | ArchiveError::NoLinkTarget { entry, .. }
            | ArchiveError::Unsupported { entry, .. }
            | ArchiveError::Header { entry, .. } => Some(entry),
        }
    }
}

/// An operation on a host path that failed (reading a file to archive, writing an entry).
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct PathError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl PathError {
    /// A failure of `op` on `path`.
    pub fn on(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| PathError { op, path, source }
    }
}

/// Why writing a tar failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A host file being archived could not be read.
    #[error(transparent)]
    Io(PathError),
    /// The output stream failed (e.g. its disk is full), not a file being read.
    #[error("writing the tar stream: {source}")]
    Stream {
        #[source]
        source: io::Error,
    },
    /// A file a tar cannot hold (not a socket: those are left out).
    #[error("{path}: this kind of special file cannot be put in a tar")]
    UnsupportedFile { path: PathBuf },
}

impl WriteError {
    /// An I/O error on host file `path` while doing `op`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let on = PathError::on(op, path);
        move |source| WriteError::Io(on(source))
    }
}
