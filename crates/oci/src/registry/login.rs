//! `rbuild login` and `rbuild logout`, as `docker login`/`docker logout`: a login first checks
//! the credentials against the registry (`GET /v2/`, answering its challenge: basic, or a
//! bearer token fetched with them), then stores them through [`DockerConfig`] (credential
//! helper or `config.json`). The server is named as Docker names it: none means Docker Hub
//! (`https://index.docker.io/v1/`), else `host[:port]` (a scheme or path given is dropped).
//! The check goes to the registry itself, never a mirror, with the configuration file's
//! `http`/TLS settings for it.

use super::auth::store::DockerConfig;
use super::auth::store::{Removed, Stored};
use super::auth::{normalise_auth_key, server_url, Credential, Credentials, DockerCredentials};
use super::client::{Client, Target};
use super::config::RegistryConfig;
use super::error::{Object, RegistryError};

/// The registry a login is for: `docker.io` for Docker Hub, else `host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginServer {
    host: String,
}

impl LoginServer {
    /// The server of `rbuild login [SERVER]`: Docker Hub when none is given.
    pub fn parse(arg: Option<&str>) -> LoginServer {
        let host = arg
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(normalise_auth_key)
            .unwrap_or_else(|| rbuild_types::DEFAULT_REGISTRY.to_string());
        LoginServer { host }
    }

    /// The registry host (`docker.io` for Docker Hub).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The key Docker writes in `config.json` and hands to credential helpers.
    pub fn key(&self) -> String {
        server_url(&self.host)
    }
}

impl std::fmt::Display for LoginServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

impl Client {
    /// Checks that this client's credentials are accepted by `registry` (`GET /v2/`).
    pub fn check_login(&self, registry: &str) -> Result<(), RegistryError> {
        let endpoint = self.config().registry_endpoint(registry);
        let target = Target {
            endpoint: &endpoint,
            repository: "",
            object: Object::Login,
            actions: "",
        };
        let url = target.url("/v2/");
        self.retry(&target, |_| {
            self.send(&target, &url, &|http| Ok(http.get(&url)))
                .map(drop)
        })
    }
}

/// Checks `credentials` against `server`, then stores them in `docker_config`; says where.
pub fn login(
    config: &RegistryConfig,
    server: &LoginServer,
    credentials: Credentials,
    docker_config: &mut DockerConfig,
) -> Result<Stored, RegistryError> {
    let mut only_these = DockerCredentials::default();
    only_these.insert(server.host(), credentials.clone());
    Client::new(config.clone())
        .with_credentials(only_these)
        .check_login(server.host())?;
    docker_config.save_login(server.host(), &Credential::Password(credentials))
}

/// Removes what `docker_config` (and its credential helper) holds for `server`.
pub fn logout(
    server: &LoginServer,
    docker_config: &mut DockerConfig,
) -> Result<Removed, RegistryError> {
    docker_config.remove_login(server.host())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_named_as_docker_names_them() {
        let cases = [
            (None, "docker.io", "https://index.docker.io/v1/"),
            (
                Some("docker.io"),
                "docker.io",
                "https://index.docker.io/v1/",
            ),
            (
                Some("https://index.docker.io/v1/"),
                "docker.io",
                "https://index.docker.io/v1/",
            ),
            (Some("127.0.0.1:5443"), "127.0.0.1:5443", "127.0.0.1:5443"),
            (Some("https://r.example/v2/"), "r.example", "r.example"),
        ];
        for (arg, host, key) in cases {
            let server = LoginServer::parse(arg);
            assert_eq!(
                (server.host(), server.key().as_str()),
                (host, key),
                "{arg:?}"
            );
        }
    }
}
