//! The HTTP side of the registry client: endpoints, timeouts, authentication retries.
//!
//! [`Client`] gets its reqwest clients (verifying and non-verifying TLS) from the one HTTP
//! client set-up, [`HttpClients`], which builds them on first use so that a `Client` can be
//! created anywhere, even inside an async runtime. Every
//! request goes through [`Client::send`], which adds the authorization cached for the
//! `(host, repository)` pair, answers a `401` challenge once (bearer token or basic
//! credentials) and turns non-success statuses into [`RegistryError::Status`] naming the
//! registry, repository and object. [`Client::each_endpoint`] runs an operation against the
//! configured endpoints in order, moving on when [`RegistryError::try_next_endpoint`] allows.
//!
//! The pull operations live in `pull.rs`, the push operations in `push.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;

use super::auth::{Challenge, DockerCredentials, TokenResponse};
use super::config::{Endpoint, RegistryConfig};
use super::error::{At, Object, RegistryError};
use crate::http::HttpClients;

pub use crate::http::CONNECT_TIMEOUT;
/// How long any single wait (response headers, one read of a body) may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for a whole monolithic upload request.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A registry client for one configuration. Cheap to share by reference across threads.
pub struct Client {
    config: RegistryConfig,
    credentials: Mutex<Option<Arc<DockerCredentials>>>,
    http: HttpClients,
    /// `Authorization` header values by `(endpoint host, repository)`.
    auth_cache: Mutex<HashMap<(String, String), String>>,
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

    pub(crate) fn status(&self, status: StatusCode) -> RegistryError {
        RegistryError::Status {
            at: self.at(),
            status,
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
        }
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

    fn http(&self, insecure: bool) -> Result<Http, RegistryError> {
        self.http.get(insecure).map_err(RegistryError::ClientBuild)
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
        let http = self.http(target.endpoint.insecure)?;
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
            return Err(target.status(resp.status()));
        };
        let auth = self.authorize(&http, target, &challenge)?;
        let Some(auth) = auth else {
            return Err(target.status(resp.status()));
        };
        if cached.as_deref() == Some(auth.as_str()) {
            // The same authorization was just refused; asking again would not help.
            return Err(target.status(resp.status()));
        }
        lock(&self.auth_cache).insert(key, auth.clone());
        let resp = build(&http)?
            .header(AUTHORIZATION, auth)
            .send()
            .map_err(|e| target.transport(url, e))?;
        check(target, resp)
    }

    /// The `Authorization` value answering `challenge`, or `None` if there is nothing to try
    /// (a Basic challenge without credentials).
    fn authorize(
        &self,
        http: &Http,
        target: &Target<'_>,
        challenge: &Challenge,
    ) -> Result<Option<String>, RegistryError> {
        let creds = self.credentials()?;
        let basic = creds.lookup(&target.endpoint.host)?;
        match challenge {
            Challenge::Basic => Ok(basic.map(|c| c.basic_header())),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let own_scope = format!("repository:{}:{}", target.repository, target.actions);
                // The registry's scope names what this request needs; ours covers the
                // repository for the whole operation (e.g. pull and push).
                let mut query: Vec<(&str, &str)> = Vec::new();
                if let Some(s) = service {
                    query.push(("service", s));
                }
                query.push(("scope", &own_scope));
                if let Some(s) = scope.as_deref().filter(|s| *s != own_scope) {
                    query.push(("scope", s));
                }
                let mut req = http.get(realm).query(&query);
                if let Some(c) = &basic {
                    req = req.header(AUTHORIZATION, c.basic_header());
                }
                let token_err = |source| RegistryError::TokenTransport {
                    registry: target.registry(),
                    realm: realm.clone(),
                    source,
                };
                let resp = req.send().map_err(token_err)?;
                if !resp.status().is_success() {
                    return Err(RegistryError::TokenStatus {
                        registry: target.registry(),
                        realm: realm.clone(),
                        status: resp.status(),
                    });
                }
                let token: TokenResponse = resp.json().map_err(token_err)?;
                match token.into_token() {
                    Some(t) => Ok(Some(format!("Bearer {t}"))),
                    None => Err(RegistryError::TokenMissing {
                        registry: target.registry(),
                        realm: realm.clone(),
                    }),
                }
            }
        }
    }
}

fn check(target: &Target<'_>, resp: Response) -> Result<Response, RegistryError> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(target.status(resp.status()))
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it (the
/// guarded maps stay valid whatever happened).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
