//! The [`RemoteSource`] port: HTTP and git downloads, shaped by their consumers: the solver
//! (`ADD <url>`, `ADD <git url>`) and the context crate (URL and git build contexts).
//!
//! Only the transport is behind the port. An HTTP GET ([`HttpSource::http_get`]) sends the
//! validators of an earlier response, when it has them, and answers [`HttpFetch::NotModified`]
//! or a body whose status was a success; what to do with it (blob caching, the
//! conditional-request state, checksums) stays with the consumer. Git
//! ([`GitSource`]) resolves a reference to a commit through the remote's ref listing and
//! fetches and checks out a commit or a reference, submodules included, into a directory.
//!
//! The two halves are separate traits, since separate adapters implement them (`rbuild-oci`
//! the HTTP half, with the one HTTP client set-up the registry client uses too;
//! `rbuild-context` the git half, with its git runner); [`RemoteSources`] joins one of each
//! into the [`RemoteSource`] the builder hands to the solver and the context.
//!
//! Errors name the URL or remote, and the HTTP status or git's stderr.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Validators of an earlier response to the same URL, sent as `If-None-Match` and
/// `If-Modified-Since` so that the server may answer "not modified".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    /// The earlier response's `ETag`, as sent.
    pub etag: Option<String>,
    /// The earlier response's `Last-Modified`, as sent.
    pub last_modified: Option<String>,
}

/// What an HTTP GET answered.
pub enum HttpFetch {
    /// `304 Not Modified` to a request with validators: the earlier body is still current.
    NotModified,
    /// A success status, with its body still to be read.
    Body(HttpBody),
}

impl std::fmt::Debug for HttpFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpFetch::NotModified => f.write_str("NotModified"),
            HttpFetch::Body(b) => f.debug_tuple("Body").field(b).finish(),
        }
    }
}

/// A response with a success status. Reading `body` may fail (a cut connection); the
/// consumer checks the length it read against `content_length`.
pub struct HttpBody {
    pub body: Box<dyn Read + Send>,
    /// `Content-Length`, when the server sent one.
    pub content_length: Option<u64>,
    /// `ETag`, when present and text.
    pub etag: Option<String>,
    /// `Last-Modified`, when present and text, as sent.
    pub last_modified: Option<String>,
}

impl std::fmt::Debug for HttpBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBody")
            .field("content_length", &self.content_length)
            .field("etag", &self.etag)
            .field("last_modified", &self.last_modified)
            .finish_non_exhaustive()
    }
}

/// An HTTP status code, with its reason phrase when it is a known one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpStatus {
    pub code: u16,
    pub reason: Option<&'static str>,
}

impl std::fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason {
            Some(reason) => write!(f, "{} {reason}", self.code),
            None => write!(f, "{}", self.code),
        }
    }
}

/// Why an HTTP GET failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No response: the request could not be made or sent (with every cause, since an HTTP
    /// client's own message is often just "error sending request").
    #[error("fetching {url}: {detail}")]
    Transport { url: String, detail: String },
    /// The server answered with a status that is not a success (nor an expected `304`).
    #[error("fetching {url}: server answered {status}")]
    Status { url: String, status: HttpStatus },
}

/// HTTP downloads. Blocking: the solver calls it off the async runtime.
pub trait HttpSource: Send + Sync {
    /// GETs `url` (redirects followed). With `validators`, a `304` is
    /// [`HttpFetch::NotModified`]; without, and for any other status that is not a success,
    /// it is [`HttpError::Status`].
    fn http_get(&self, url: &str, validators: Option<&Validators>) -> Result<HttpFetch, HttpError>;
}

/// Which transports a git operation may use. Decided by the consumer: a Dockerfile's
/// `ADD` must not read the host's repositories; a git context the user named may be local.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitTransports {
    /// `git`, `ssh`, `http` and `https`.
    Network,
    /// The network ones, and `file` for the repository the user named (not its submodules).
    AlsoLocal,
}

/// A reference resolved through the remote's ref listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitRef {
    /// The full commit id (lower-case hex) the reference names (an annotated tag's peeled
    /// commit).
    pub commit: String,
    /// For an annotated tag, the id of the tag object (lower-case hex).
    pub tag_object: Option<String>,
}

/// One resolution: what `reference` (a branch, a tag, `HEAD` or a full ref name) names at
/// `remote` now.
#[derive(Clone, Copy, Debug)]
pub struct GitResolve<'a> {
    pub remote: &'a str,
    pub reference: &'a str,
    pub transports: GitTransports,
}

/// What to check out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitRevision<'a> {
    /// A commit known by its full id, and the reference that named it, if not the id
    /// itself (fetched by name when the server refuses to serve an id).
    Commit {
        commit: &'a str,
        named_by: Option<&'a str>,
    },
    /// A branch, a tag, `HEAD` or a commit id (full or, when everything has to be fetched,
    /// abbreviated), resolved while fetching.
    Reference(&'a str),
}

/// One checkout: `revision` of `remote` into the empty directory `dest`.
#[derive(Clone, Copy, Debug)]
pub struct GitCheckout<'a> {
    pub remote: &'a str,
    pub revision: GitRevision<'a>,
    /// An existing empty directory; it receives the working tree.
    pub dest: &'a Path,
    /// Keep `dest/.git` (otherwise it, and each submodule's `.git` file, is removed).
    pub keep_git_dir: bool,
    pub transports: GitTransports,
}

/// Why a git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A git command failed, or could not run.
    #[error("git {command} for {remote}: {detail}")]
    Command {
        remote: String,
        /// Its arguments, space-separated.
        command: String,
        /// Git's exit status and stderr, or why it could not run.
        detail: String,
    },
    /// The ref listing has no such branch or tag.
    #[error(
        "{remote}: no branch or tag named {reference:?} (give a branch, a tag or a full commit id)"
    )]
    UnknownRef { remote: String, reference: String },
    /// Nothing fetched is named so.
    #[error("{remote}: no branch, tag or commit named {reference:?}")]
    UnknownRevision { remote: String, reference: String },
    /// Everything was fetched, and the commit is not among it.
    #[error("git fetch {commit} for {remote}: the commit is not in the repository")]
    MissingCommit { remote: String, commit: String },
    #[error(transparent)]
    Io(#[from] PathIoError),
}

/// An I/O failure on a path, saying what was being done to it.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct PathIoError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl PathIoError {
    /// Maps an io error on `path` while doing `action` (for `map_err`).
    pub fn on(action: &'static str, path: PathBuf) -> impl FnOnce(std::io::Error) -> PathIoError {
        move |source| PathIoError {
            action,
            path,
            source,
        }
    }
}

/// Git repositories. Blocking: the solver calls it off the async runtime.
pub trait GitSource: Send + Sync {
    /// The commit `resolve.reference` names at `resolve.remote` now, as its ref listing says.
    fn git_resolve(&self, resolve: &GitResolve<'_>) -> Result<GitRef, GitError>;
    /// Fetches (shallow where the server allows it) and checks out `checkout.revision`, with
    /// its submodules, into `checkout.dest`.
    fn git_checkout(&self, checkout: &GitCheckout<'_>) -> Result<(), GitError>;
}

/// HTTP and git downloads: what the solver and the context are handed.
pub trait RemoteSource: HttpSource + GitSource {}

impl<T: HttpSource + GitSource + ?Sized> RemoteSource for T {}

/// One adapter of each half, joined into a [`RemoteSource`].
#[derive(Clone)]
pub struct RemoteSources {
    pub http: Arc<dyn HttpSource>,
    pub git: Arc<dyn GitSource>,
}

impl std::fmt::Debug for RemoteSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSources").finish_non_exhaustive()
    }
}

impl HttpSource for RemoteSources {
    fn http_get(&self, url: &str, validators: Option<&Validators>) -> Result<HttpFetch, HttpError> {
        self.http.http_get(url, validators)
    }
}

impl GitSource for RemoteSources {
    fn git_resolve(&self, resolve: &GitResolve<'_>) -> Result<GitRef, GitError> {
        self.git.git_resolve(resolve)
    }

    fn git_checkout(&self, checkout: &GitCheckout<'_>) -> Result<(), GitError> {
        self.git.git_checkout(checkout)
    }
}

/// Whether `s` is a full SHA-1 or SHA-256 object id.
pub fn is_commit_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_like_http() {
        let s = HttpStatus {
            code: 404,
            reason: Some("Not Found"),
        };
        assert_eq!(s.to_string(), "404 Not Found");
        let s = HttpStatus {
            code: 599,
            reason: None,
        };
        assert_eq!(s.to_string(), "599");
        assert!(is_commit_id(&"a".repeat(40)));
        assert!(is_commit_id(&"A".repeat(64)));
        assert!(!is_commit_id("abc123"));
    }
}
