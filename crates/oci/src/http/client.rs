//! The one HTTP client set-up: every request rbuild makes (registry API, `ADD <url>`, URL
//! contexts) goes through a client built by [`HttpClients`], so all of them get the same user
//! agent, connect timeout, proxies (from the environment, as reqwest reads `HTTP_PROXY`,
//! `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`), TLS (rustls) and per-host `insecure` setting of
//! the configuration file (`[registry."<host>"]`, see [`crate::registry::config`]).
//!
//! Clients are built on first use, so that an [`HttpClients`] can be created anywhere, even
//! inside an async runtime (a blocking reqwest client must not be built there).

use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::Client;

/// How long to wait for a TCP/TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("rbuild/", env!("CARGO_PKG_VERSION"));

/// The clients of one kind of use: one verifying TLS certificates, one not (for hosts
/// configured `insecure = true`), built on first use and shared (a reqwest client is a
/// handle to one connection pool).
#[derive(Debug)]
pub struct HttpClients {
    timeout: Option<Duration>,
    built: Mutex<Option<(Client, Client)>>,
}

impl HttpClients {
    /// Clients whose every single wait (response headers, one read of a body) is bounded by
    /// `timeout`; `None` waits as long as the server takes.
    pub fn new(timeout: Option<Duration>) -> HttpClients {
        HttpClients {
            timeout,
            built: Mutex::new(None),
        }
    }

    /// The client for a host: skipping certificate verification when `insecure`.
    pub fn get(&self, insecure: bool) -> Result<Client, reqwest::Error> {
        let mut slot = self.built.lock().unwrap_or_else(|e| e.into_inner());
        let (secure, danger) = match slot.as_ref() {
            Some(pair) => pair.clone(),
            None => {
                let pair = (build(self.timeout, false)?, build(self.timeout, true)?);
                *slot = Some(pair.clone());
                pair
            }
        };
        Ok(if insecure { danger } else { secure })
    }
}

/// The set-up itself.
fn build(timeout: Option<Duration>, insecure: bool) -> Result<Client, reqwest::Error> {
    Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .danger_accept_invalid_certs(insecure)
        .build()
}
