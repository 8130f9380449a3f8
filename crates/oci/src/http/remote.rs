//! [`HttpRemote`]: the HTTP half of the `RemoteSource` port ([`HttpSource`]), for `ADD <url>`
//! and URL contexts. A GET through the shared client set-up ([`HttpClients`]) without an
//! overall timeout (a download takes as long as it takes; each wait is bounded by the
//! connect timeout and the server), with `If-None-Match`/`If-Modified-Since` when validators
//! are given. A URL's host (`host[:port]`) gets its `[registry."<host>"]` TLS settings
//! (`insecure`, `ca`, `keypair`);
//! `http` and `mirrors` concern the registry API only (a URL names its own scheme).

use reqwest::blocking::Response;
use reqwest::header::{HeaderMap, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{StatusCode, Url};

use rbuild_ports::{HttpBody, HttpError, HttpFetch, HttpSource, HttpStatus, Validators};

use super::client::{HttpClients, TlsSettings};
use crate::registry::RegistryConfig;

/// Downloads over HTTP(S), following the configuration file's per-host settings.
#[derive(Debug)]
pub struct HttpRemote {
    config: RegistryConfig,
    clients: HttpClients,
}

impl HttpRemote {
    pub fn new(config: RegistryConfig) -> HttpRemote {
        HttpRemote {
            config,
            clients: HttpClients::new(None),
        }
    }

    /// Whether `url`'s host is configured `insecure = true`.
    #[cfg(test)]
    pub(super) fn insecure(&self, url: &str) -> bool {
        self.tls(url).insecure
    }

    /// The TLS settings of `url`'s host (`host[:port]`).
    fn tls(&self, url: &str) -> TlsSettings {
        let Ok(parsed) = Url::parse(url) else {
            return TlsSettings::default();
        };
        let Some(host) = parsed.host_str() else {
            return TlsSettings::default();
        };
        let key = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        self.config.tls(&key)
    }
}

impl HttpSource for HttpRemote {
    fn http_get(&self, url: &str, validators: Option<&Validators>) -> Result<HttpFetch, HttpError> {
        let transport = |e: &dyn std::error::Error| HttpError::Transport {
            url: url.to_string(),
            detail: error_chain(e),
        };
        let client = self
            .clients
            .get(&self.tls(url))
            .map_err(|e| transport(&e))?;
        let mut req = client.get(url);
        if let Some(v) = validators {
            if let Some(etag) = &v.etag {
                req = req.header(IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &v.last_modified {
                req = req.header(IF_MODIFIED_SINCE, lm);
            }
        }
        let resp = req.send().map_err(|e| transport(&e))?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED && validators.is_some() {
            return Ok(HttpFetch::NotModified);
        }
        if !status.is_success() {
            return Err(HttpError::Status {
                url: url.to_string(),
                status: HttpStatus {
                    code: status.as_u16(),
                    reason: status.canonical_reason(),
                },
            });
        }
        Ok(HttpFetch::Body(body(resp)))
    }
}

/// The response as the port hands it out.
fn body(resp: Response) -> HttpBody {
    let (etag, last_modified) = validators(resp.headers());
    HttpBody {
        content_length: resp.content_length(),
        etag,
        last_modified,
        body: Box::new(resp),
    }
}

/// `ETag` and `Last-Modified` of a response, when present and text.
fn validators(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    (get(ETAG), get(LAST_MODIFIED))
}

/// An error with its causes (reqwest's own message is often just "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
