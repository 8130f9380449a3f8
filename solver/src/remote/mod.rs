//! Remote sources: the `Http` (`ADD <url>`) and `Git` (`ADD <git url>`) ops.
//!
//! The transport is behind the `RemoteSource` port (`rbuild-ports`; its HTTP half is
//! implemented by `rbuild-oci`, its git half by `rbuild-context`); what stays here is the
//! engine's part: the blobs and conditional-request state of downloads and `--checksum`
//! verification (`http.rs`), the commit and checksum checks of git sources and moving a
//! checkout's tree into the layer (`git.rs`).
//!
//! Each is done in two phases, like an image: [`resolve`] runs while the vertex is keyed and
//! finds out what the source is *now* (the body's digest and `Last-Modified`, downloaded with a
//! conditional request when the URL was fetched before; the commit a git reference names),
//! without which the key could not be computed; [`materialize`] runs only when the key misses
//! the cache and writes the one layer the op yields. With `--checksum`, an http source is keyed
//! on the checksum alone and downloaded (and verified) only when it runs.
//!
//! Errors ([`RemoteError`]) name the URL or remote and the HTTP status or git's stderr.

mod error;
mod git;
mod http;

use std::path::Path;

use rbuild_cache::Store;
use rbuild_graph::Op;
use rbuild_ports::RemoteSource;
use rbuild_types::{Digest, Hasher};

pub use error::RemoteError;

/// What keying a remote source found out; handed on to [`materialize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The body is blob `blob` of the store; `last_modified` is the response's header as sent.
    Http {
        blob: Digest,
        last_modified: Option<String>,
    },
    /// An http source with `--checksum`: nothing was downloaded.
    HttpChecksum,
    /// The full commit id (hex) the reference named.
    Git { commit: String },
}

impl Resolved {
    /// The part of the vertex's key that is not in the op itself: content digest and
    /// `Last-Modified` (which becomes the file's mtime) for a download, the commit for git,
    /// nothing for a checksummed download (its key is the checksum, in the op).
    pub(crate) fn key_part(&self) -> Option<Digest> {
        let mut h = Hasher::new();
        match self {
            Resolved::HttpChecksum => return None,
            Resolved::Http {
                blob,
                last_modified,
            } => {
                h.field(b"http");
                h.field(blob.as_bytes());
                h.field(last_modified.as_deref().unwrap_or("").as_bytes());
            }
            Resolved::Git { commit } => {
                h.field(b"git");
                h.field(commit.as_bytes());
            }
        }
        Some(h.finish())
    }
}

/// Finds out what a remote op's source is now (blocking: network, git). `None` for an op
/// that is not remote.
pub(crate) fn resolve(
    store: &Store,
    remote: &dyn RemoteSource,
    op: &Op,
) -> Result<Option<Resolved>, RemoteError> {
    match op {
        Op::Http(h) if h.checksum.is_some() => Ok(Some(Resolved::HttpChecksum)),
        Op::Http(h) => http::resolve(store, remote, &h.url).map(Some),
        Op::Git(g) => git::resolve(remote, g).map(|commit| Some(Resolved::Git { commit })),
        _ => Ok(None),
    }
}

/// Writes the layer of a remote op into the empty directory `upper`.
pub(crate) fn materialize(
    store: &Store,
    remote: &dyn RemoteSource,
    op: &Op,
    resolved: Option<&Resolved>,
    upper: &Path,
) -> Result<(), RemoteError> {
    match (op, resolved) {
        (Op::Http(h), Some(r)) => http::materialize(store, remote, h, r, upper),
        (Op::Git(g), Some(Resolved::Git { commit })) => {
            git::materialize(store, remote, g, commit, upper)
        }
        _ => Err(RemoteError::Unresolved {
            op: op.kind().to_string(),
        }),
    }
}
