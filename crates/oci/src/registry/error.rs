//! Errors of the registry client. Every variant names the registry host and repository (and
//! the manifest reference or blob digest) so a user can tell which request failed and why,
//! e.g. `127.0.0.1:5000/library/nope: manifest latest: 404 Not Found: manifest unknown
//! (MANIFEST_UNKNOWN)`: a failed request also shows what the registry said in its body
//! ([`ErrorBody`]).

use std::path::PathBuf;

use rbuild_types::Digest;

use super::config::ConfigError;
use super::error_body::ErrorBody;
use super::retry::{RetryAfter, RetryCause};
use crate::http::ClientError;

/// Which registry object a request was about, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// `/v2/` (the API version check) or a token request.
    Api,
    Manifest(String),
    Blob(Digest),
    Upload(Digest),
    /// The upload of a layer's compressed form while it is being compressed (its digest is
    /// known at the end): named by the layer's uncompressed digest.
    CompressingUpload(Digest),
    /// The `/v2/` check of `rbuild login`.
    Login,
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Object::Api => write!(f, "API"),
            Object::Manifest(r) => write!(f, "manifest {r}"),
            Object::Blob(d) => write!(f, "blob {d}"),
            Object::Upload(d) => write!(f, "upload of blob {d}"),
            Object::CompressingUpload(d) => write!(f, "upload of layer {d} as it is compressed"),
            Object::Login => write!(f, "login"),
        }
    }
}

/// Where a request went: registry host, repository and object. Printed as
/// `registry/repository: object` (`registry: object` for requests about no repository).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At {
    pub registry: String,
    pub repository: String,
    pub object: Object,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.repository.is_empty() {
            write!(f, "{}: {}", self.registry, self.object)
        } else {
            write!(f, "{}/{}: {}", self.registry, self.repository, self.object)
        }
    }
}

/// A registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{registry}: setting up the HTTP client: {source}")]
    ClientBuild {
        registry: String,
        #[source]
        source: ClientError,
    },
    #[error("{at}: {status}{body}")]
    Status {
        at: Box<At>,
        status: reqwest::StatusCode,
        /// What the registry said (`errors[]`), shown after the status.
        body: ErrorBody,
    },
    /// A transient failure that lasted through every attempt of the retry policy. The last
    /// error is not a `source`: its message is this one's.
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<RegistryError>,
    },
    #[error("{at}: request to {url} failed: {source}")]
    Transport {
        at: Box<At>,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{at}: content has digest {actual}, expected {expected}")]
    DigestMismatch {
        at: Box<At>,
        expected: Digest,
        actual: Digest,
    },
    #[error("{at}: {size} bytes, the descriptor says {expected}")]
    SizeMismatch {
        at: Box<At>,
        expected: u64,
        size: u64,
    },
    #[error("{at}: larger than the limit of {limit} bytes")]
    TooLarge { at: Box<At>, limit: u64 },
    #[error("{at}: invalid JSON: {source}")]
    Json {
        at: Box<At>,
        #[source]
        source: serde_json::Error,
    },
    #[error("{at}: unsupported media type {media_type:?}")]
    MediaType { at: Box<At>, media_type: String },
    #[error("{at}: no image for platform {platform} (the index has: {available})")]
    NoPlatform {
        at: Box<At>,
        platform: String,
        available: String,
    },
    #[error("{at}: reading the response body: {source}")]
    BodyRead {
        at: Box<At>,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: reading the content to upload: {source}")]
    UploadRead {
        at: Box<At>,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: writing the content: {source}")]
    Write {
        at: Box<At>,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: the registry returned an invalid {header} header {value:?}")]
    BadHeader {
        at: Box<At>,
        header: &'static str,
        value: String,
    },
    #[error("{registry}: token from {realm}: {status}{body}")]
    TokenStatus {
        registry: String,
        realm: String,
        status: reqwest::StatusCode,
        body: ErrorBody,
    },
    #[error("{registry}: token from {realm}: request failed: {source}")]
    TokenTransport {
        registry: String,
        realm: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{registry}: token from {realm}: the response has no token")]
    TokenMissing { registry: String, realm: String },
    #[error("reading Docker credentials {path}: {source}")]
    DockerConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing Docker credentials {path}: {source}")]
    DockerConfigParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "Docker credentials {path}: the \"auth\" entry for {host} is not base64 of user:password"
    )]
    DockerConfigAuth { path: PathBuf, host: String },
    #[error("no Docker config.json to write: neither DOCKER_CONFIG nor HOME is set")]
    DockerConfigUnknown,
    #[error("Docker config {path}: \"{field}\" is not a JSON object")]
    DockerConfigShape { path: PathBuf, field: &'static str },
    #[error("writing Docker config {path}: {source}")]
    DockerConfigWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credential helper {program} {action} for {server} failed: {message}")]
    CredentialHelperFailed {
        program: PathBuf,
        action: &'static str,
        server: String,
        message: String,
    },
    #[error("running credential helper {program}: {source}")]
    CredentialHelperRun {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credential helper {program} answered for {host} with invalid JSON: {source}")]
    CredentialHelperReply {
        program: PathBuf,
        host: String,
        #[source]
        source: serde_json::Error,
    },
}

impl RegistryError {
    /// Whether the next endpoint (the next mirror, or the registry itself) should be tried:
    /// connection failures and timeouts anywhere, and "not found" or server errors from a
    /// mirror.
    pub fn try_next_endpoint(&self, from_mirror: bool) -> bool {
        match self {
            RegistryError::GaveUp { last, .. } => last.try_next_endpoint(from_mirror),
            RegistryError::Transport { source, .. } => {
                source.is_connect() || source.is_timeout() || from_mirror
            }
            RegistryError::Status { status, .. } => {
                from_mirror
                    && (*status == reqwest::StatusCode::NOT_FOUND || status.is_server_error())
            }
            _ => false,
        }
    }

    /// Whether trying the same request again may succeed: a dropped connection, a body cut
    /// short, a timeout, `429 Too Many Requests` and `500`, `502`, `503`, `504`, from the
    /// registry or its token server. A connection that cannot be made (refused, or its TLS
    /// handshake failed) is not: retrying would only delay the error (or the next mirror).
    pub fn is_transient(&self) -> bool {
        self.retry_cause().is_some()
    }

    /// Why this error is worth a retry, when it is.
    pub fn retry_cause(&self) -> Option<RetryCause> {
        match self {
            RegistryError::Transport { source, .. }
            | RegistryError::TokenTransport { source, .. } => {
                dropped(source).then_some(RetryCause::Dropped)
            }
            RegistryError::BodyRead { .. } => Some(RetryCause::Dropped),
            RegistryError::Status { status, .. } | RegistryError::TokenStatus { status, .. } => {
                retryable_status(*status).then_some(RetryCause::Status(*status))
            }
            _ => None,
        }
    }

    /// What the registry's `Retry-After` said, on a failed response.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        match self {
            RegistryError::Status { body, .. } | RegistryError::TokenStatus { body, .. } => {
                body.retry_after
            }
            _ => None,
        }
    }

    /// Whether the registry said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::Status { status, .. } if *status == reqwest::StatusCode::NOT_FOUND)
    }
}

/// The statuses a retry may cure.
fn retryable_status(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// Whether a request failed after its connection was made (dropped, cut short, timed out),
/// rather than while making it.
fn dropped(e: &reqwest::Error) -> bool {
    e.is_timeout() || (!e.is_connect() && (e.is_request() || e.is_body() || e.is_decode()))
}
