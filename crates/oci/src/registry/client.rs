//! The HTTP side of the registry client: endpoints, timeouts, authentication retries.
//!
//! [`Client`] gets its reqwest clients (verifying and non-verifying TLS) from the one HTTP
//! client set-up, [`HttpClients`], which builds them on first use so that a `Client` can be
//! created anywhere, even inside an async runtime. Every
//! request goes through [`Client::send`], which adds the authorization cached for the
//! `(host, repository)` pair, answers a `401` challenge once (bearer token or basic
//! credentials or identity token) and turns non-success statuses into
//! [`RegistryError::Status`] naming the registry, repository and object, with the `errors[]`
//! of the response body. [`Client::each_endpoint`] runs an operation against the
//! configured endpoints in order, moving on when [`RegistryError::try_next_endpoint`] allows.
//! Each operation on one endpoint runs under [`Client::retry`], the one retry policy
//! ([`Retrier`]), whose notices go to the observer given with [`Client::with_retry_observer`].
//!
//! The pull operations live in `pull.rs`, the push operations in `push.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;

use super::auth::token::TokenRequest;
use super::auth::{Challenge, DockerCredentials};
use super::config::{Endpoint, RegistryConfig};
use super::error::{At, Object, RegistryError};
use super::error_body::ErrorBody;
use super::retry::{Retrier, RetryObserver};
use super::transfer::TransferObserver;
use crate::http::HttpClients;

pub use crate::http::CONNECT_TIMEOUT;
/// How long any single wait (response headers, one read of a body) may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for a whole upload request (a chunk, or a monolithic upload).
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How many bytes of a blob one `PATCH` of a chunked upload carries, by default.
pub const UPLOAD_CHUNK: usize = 16 << 20;

/// A registry client for one configuration. Cheap to share by reference across threads.
pub struct Client {
    config: RegistryConfig,
    credentials: Mutex<Option<Arc<DockerCredentials>>>,
    http: HttpClients,
    /// `Authorization` header values by `(endpoint host, repository)`.
    auth_cache: Mutex<HashMap<(String, String), String>>,
    retrier: Retrier,
    upload_chunk: usize,
    transfers: Option<TransferObserver>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The context of one request, for auth caching and error messages.
pub(crate) struct Target<'a> {
    pub endpoint: &'a Endpoint,
    pub repository: &'a str,
    pub object: Object,
    /// Actions for a token scope (`pull` or `pull,push`).
    pub actions: &'a str,
}

impl Target<'_> {
    /// The error-message location of this request.
    pub(crate) fn at(&self) -> Box<At> {
        Box::new(At {
            registry: self.endpoint.host.clone(),
            repository: self.repository.to_string(),
            object: self.object.clone(),
        })
    }

    /// A success status that is not the one expected (the body says nothing then).
    pub(crate) fn status(&self, status: StatusCode) -> RegistryError {
        RegistryError::Status {
            at: self.at(),
            status,
            body: ErrorBody::default(),
        }
    }

    /// An upload that sent `sent` bytes of a blob of `expected`.
    pub(crate) fn size_mismatch(&self, expected: u64, sent: u64) -> RegistryError {
        RegistryError::SizeMismatch {
            at: self.at(),
            expected,
            size: sent,
        }
    }

    /// A failed response, with what its body says.
    pub(crate) fn failed(&self, resp: Response) -> RegistryError {
        RegistryError::Status {
            at: self.at(),
            status: resp.status(),
            body: ErrorBody::read(resp),
        }
    }

    pub(crate) fn transport(&self, url: &str, source: reqwest::Error) -> RegistryError {
        RegistryError::Transport {
            at: self.at(),
            url: url.to_string(),
            source,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.base_url)
    }

    pub(crate) fn registry(&self) -> String {
        self.endpoint.host.clone()
    }
}

impl Client {
    /// A client for `config`. Docker credentials are read from `config.json` on first use
    /// unless given with [`Client::with_credentials`].
    pub fn new(config: RegistryConfig) -> Client {
        Client {
            config,
            credentials: Mutex::new(None),
            http: HttpClients::new(Some(IO_TIMEOUT)),
            auth_cache: Mutex::new(HashMap::new()),
            retrier: Retrier::default(),
            upload_chunk: UPLOAD_CHUNK,
            transfers: None,
        }
    }

    /// Retries under `retrier` instead of the default policy and clock.
    pub fn with_retrier(mut self, retrier: Retrier) -> Client {
        self.retrier = retrier;
        self
    }

    /// Tells `observer` of every retry (to show it as a progress notice).
    pub fn with_retry_observer(mut self, observer: RetryObserver) -> Client {
        self.retrier = self.retrier.with_observer(observer);
        self
    }

    /// Tells `observer` of the byte progress of layer pulls and blob pushes.
    pub fn with_transfer_observer(mut self, observer: TransferObserver) -> Client {
        self.transfers = Some(observer);
        self
    }

    /// The observer of transfers, if any.
    pub fn transfer_observer(&self) -> Option<TransferObserver> {
        self.transfers.clone()
    }

    /// Uploads blobs in chunks of `bytes` (at least 1) instead of [`UPLOAD_CHUNK`].
    pub fn with_upload_chunk(mut self, bytes: usize) -> Client {
        self.upload_chunk = bytes.max(1);
        self
    }

    pub(crate) fn upload_chunk(&self) -> usize {
        self.upload_chunk
    }

    /// Runs one operation about `target` under the retry policy.
    pub(crate) fn retry<T>(
        &self,
        target: &Target<'_>,
        op: impl FnMut(u32) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        self.retrier.run(&target.at(), op)
    }

    /// Uses these credentials instead of Docker's `config.json`.
    pub fn with_credentials(self, credentials: DockerCredentials) -> Client {
        *lock(&self.credentials) = Some(Arc::new(credentials));
        self
    }

    /// The configuration this client follows.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    fn credentials(&self) -> Result<Arc<DockerCredentials>, RegistryError> {
        let mut slot = lock(&self.credentials);
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let loaded = Arc::new(DockerCredentials::load()?);
        *slot = Some(loaded.clone());
        Ok(loaded)
    }

    fn http(&self, endpoint: &Endpoint) -> Result<Http, RegistryError> {
        self.http
            .get(&self.config.tls(&endpoint.host))
            .map_err(|source| RegistryError::ClientBuild {
                registry: endpoint.host.clone(),
                source,
            })
    }

    /// Runs `op` against each endpoint of `registry` in order until one succeeds or fails in
    /// a way that must not be retried elsewhere; returns the last error otherwise.
    pub(crate) fn each_endpoint<T>(
        &self,
        registry: &str,
        mut op: impl FnMut(&Endpoint) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        for mirror in self.config.mirror_endpoints(registry) {
            match op(&mirror) {
                Ok(v) => return Ok(v),
                Err(e) if e.try_next_endpoint(true) => continue,
                Err(e) => return Err(e),
            }
        }
        op(&self.config.registry_endpoint(registry))
    }

    /// Sends the request `build` makes (called again for the retry after a `401`), with
    /// authorization, and returns the response if its status is a success.
    pub(crate) fn send(
        &self,
        target: &Target<'_>,
        url: &str,
        build: &dyn Fn(&Http) -> Result<RequestBuilder, RegistryError>,
    ) -> Result<Response, RegistryError> {
        let http = self.http(target.endpoint)?;
        let key = (target.endpoint.host.clone(), target.repository.to_string());
        let cached = lock(&self.auth_cache).get(&key).cloned();
        let mut req = build(&http)?;
        if let Some(auth) = &cached {
            req = req.header(AUTHORIZATION, auth);
        }
        let resp = req.send().map_err(|e| target.transport(url, e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return check(target, resp);
        }
        let challenge = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(Challenge::parse)
            .next();
        let Some(challenge) = challenge else {
            return Err(target.failed(resp));
        };
        let auth = self.authorize(&http, target, &challenge)?;
        let Some(auth) = auth else {
            return Err(target.failed(resp));
        };
        if cached.as_deref() == Some(auth.as_str()) {
            // The same authorization was just refused; asking again would not help.
            return Err(target.failed(resp));
        }
        lock(&self.auth_cache).insert(key, auth.clone());
        let resp = build(&http)?
            .header(AUTHORIZATION, auth)
            .send()
            .map_err(|e| target.transport(url, e))?;
        check(target, resp)
    }

    /// The `Authorization` value answering `challenge`, or `None` if there is nothing to try
    /// (a Basic challenge without a user name and password).
    fn authorize(
        &self,
        http: &Http,
        target: &Target<'_>,
        challenge: &Challenge,
    ) -> Result<Option<String>, RegistryError> {
        let credential = self.credentials()?.resolve(&target.endpoint.host)?;
        match challenge {
            Challenge::Basic => Ok(credential
                .as_ref()
                .and_then(|c| c.password())
                .map(|c| c.basic_header())),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                // The registry's scope names what this request needs; ours covers the
                // repository for the whole operation (e.g. pull and push). A request about
                // no repository (the login check) asks for no scope of its own.
                let own_scope = format!("repository:{}:{}", target.repository, target.actions);
                let own = (!target.repository.is_empty()).then_some(own_scope.as_str());
                let scopes = token_scopes(own, scope.as_deref());
                let registry = target.registry();
                let token = TokenRequest {
                    registry: &registry,
                    realm,
                    service: service.as_deref(),
                    scopes,
                }
                .fetch(http, credential.as_ref())?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }
}

/// The scopes to ask a token realm for: `own` first, then each entry of the challenge's
/// `scope`, which lists several separated by spaces (a cross-repository mount needs
/// `repository:<target>:pull,push repository:<source>:pull`). Each goes in a `scope`
/// parameter of its own, as the token specification says and token servers expect
/// (cesanta/docker_auth refuses a scope with spaces in it, Harbor misreads it); duplicates
/// are dropped.
fn token_scopes<'a>(own: Option<&'a str>, challenge: Option<&'a str>) -> Vec<&'a str> {
    let mut scopes: Vec<&str> = Vec::new();
    for s in own
        .into_iter()
        .chain(challenge.into_iter().flat_map(str::split_whitespace))
    {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    scopes
}

fn check(target: &Target<'_>, resp: Response) -> Result<Response, RegistryError> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(target.failed(resp))
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it (the
/// guarded maps stay valid whatever happened).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::token_scopes;

    #[test]
    fn a_challenge_of_several_scopes_asks_for_each_on_its_own() {
        assert_eq!(
            token_scopes(
                Some("repository:team/copy:pull,push"),
                Some("repository:team/copy:pull,push  repository:team/app:pull")
            ),
            ["repository:team/copy:pull,push", "repository:team/app:pull"]
        );
        assert_eq!(
            token_scopes(Some("repository:a:pull"), Some("repository:a:push,pull")),
            ["repository:a:pull", "repository:a:push,pull"]
        );
        assert_eq!(
            token_scopes(Some("repository:a:pull"), None),
            ["repository:a:pull"]
        );
        assert_eq!(token_scopes(None, Some(" ")), Vec::<&str>::new());
        assert_eq!(token_scopes(None, None), Vec::<&str>::new());
    }
}
