//! The one HTTP client set-up: every request rbuild makes (registry API, `ADD <url>`, URL
//! contexts) goes through a client built by [`HttpClients`], so all of them get the same user
//! agent, connect timeout, proxies (from the environment, as reqwest reads `HTTP_PROXY`,
//! `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`, either case; `crates/rbuild/tests/registry_faults.rs`
//! holds registry traffic to it through a test proxy), TLS (rustls, trusting the system's CA store
//! and Mozilla's roots) and the per-host TLS settings of the configuration file
//! (`[registry."<host>"]`, see [`crate::registry::config`]): `insecure`, extra CAs (`ca`)
//! and a client certificate (`keypair`), given here as [`TlsSettings`].
//!
//! Clients are built on first use, so that an [`HttpClients`] can be created anywhere, even
//! inside an async runtime (a blocking reqwest client must not be built there). One client is
//! kept per distinct [`TlsSettings`] (a reqwest client is a handle to one connection pool).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::{Client, ClientBuilder};
use reqwest::{Certificate, Identity};
use serde::Deserialize;

/// How long to wait for a TCP/TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("rbuild/", env!("CARGO_PKG_VERSION"));

/// How TLS is set up for one host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// Skip certificate verification.
    pub insecure: bool,
    /// PEM files of CA certificates trusted in addition to the system's.
    pub ca: Vec<PathBuf>,
    /// Client certificates (BuildKit's `[[registry."<host>"].keypair]`); at most one is usable.
    pub keypairs: Vec<KeyPair>,
}

/// A client certificate and its private key, PEM files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub struct KeyPair {
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// Why a client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading CA certificate {}: {source}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA certificate {}: not PEM certificates: {source}", path.display())]
    BadCa {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("CA certificate {}: no certificate in it", path.display())]
    EmptyCa { path: PathBuf },
    #[error("reading client {what} {}: {source}", path.display())]
    ReadKeyPair {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("client certificate {} with key {}: {source}", cert.display(), key.display())]
    BadKeyPair {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("{count} client certificates (keypair) configured for one host; rbuild can present only one")]
    SeveralKeyPairs { count: usize },
    #[error("building the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// The clients of one kind of use, one per distinct [`TlsSettings`], built on first use and
/// shared.
#[derive(Debug)]
pub struct HttpClients {
    timeout: Option<Duration>,
    built: Mutex<HashMap<TlsSettings, Client>>,
}

impl HttpClients {
    /// Clients whose every single wait (response headers, one read of a body) is bounded by
    /// `timeout`; `None` waits as long as the server takes.
    pub fn new(timeout: Option<Duration>) -> HttpClients {
        HttpClients {
            timeout,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The client for a host with `tls` settings.
    pub fn get(&self, tls: &TlsSettings) -> Result<Client, ClientError> {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = built.get(tls) {
            return Ok(client.clone());
        }
        let client = build(self.timeout, tls)?;
        built.insert(tls.clone(), client.clone());
        Ok(client)
    }
}

/// The set-up itself.
fn build(timeout: Option<Duration>, tls: &TlsSettings) -> Result<Client, ClientError> {
    let mut builder = Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .danger_accept_invalid_certs(tls.insecure);
    for path in &tls.ca {
        builder = add_ca(builder, path)?;
    }
    match tls.keypairs.as_slice() {
        [] => {}
        [pair] => builder = builder.identity(identity(pair)?),
        more => return Err(ClientError::SeveralKeyPairs { count: more.len() }),
    }
    builder.build().map_err(ClientError::Build)
}

/// Trusts every certificate of the PEM file `path`.
fn add_ca(mut builder: ClientBuilder, path: &Path) -> Result<ClientBuilder, ClientError> {
    let pem = std::fs::read(path).map_err(|source| ClientError::ReadCa {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = Certificate::from_pem_bundle(&pem).map_err(|source| ClientError::BadCa {
        path: path.to_path_buf(),
        source,
    })?;
    if certs.is_empty() {
        return Err(ClientError::EmptyCa {
            path: path.to_path_buf(),
        });
    }
    for cert in certs {
        builder = builder.add_root_certificate(cert);
    }
    Ok(builder)
}

/// The client identity of a key pair (reqwest wants the key and the chain in one PEM).
fn identity(pair: &KeyPair) -> Result<Identity, ClientError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| ClientError::ReadKeyPair {
            what,
            path: path.to_path_buf(),
            source,
        })
    };
    let mut pem = read("certificate", &pair.cert)?;
    pem.push(b'\n');
    pem.extend(read("key", &pair.key)?);
    Identity::from_pem(&pem).map_err(|source| ClientError::BadKeyPair {
        cert: pair.cert.clone(),
        key: pair.key.clone(),
        source,
    })
}
