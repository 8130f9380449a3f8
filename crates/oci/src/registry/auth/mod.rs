//! Registry authentication: Docker's `config.json` credentials, credential helpers and
//! identity tokens, and `WWW-Authenticate` challenges.
//!
//! A request is first sent with whatever authorization is cached for its host and scope; on
//! `401` the client reads the challenge ([`Challenge`]): `Bearer realm=..,service=..,scope=..`
//! makes it fetch a token from the realm ([`token`]: anonymously, with basic credentials, or
//! with an identity token through OAuth2's refresh-token grant), `Basic` makes it retry with
//! the basic credentials. Credentials are looked up by registry host; Docker Hub's
//! `https://index.docker.io/v1/` key counts for all its hosts. Credential helpers
//! (`credHelpers` per host, `credsStore` for all; [`CredentialHelper`]) are asked first, by
//! running `docker-credential-<name> get` with the server on stdin, as the Docker CLI does.
//! [`store`] writes `config.json` for `rbuild login` and `rbuild logout`.

mod challenge;
mod helper;
pub mod store;
pub(crate) mod token;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::config::is_docker_hub;
use super::error::RegistryError;

pub use challenge::Challenge;
pub use helper::CredentialHelper;

/// The `config.json` key (and credential-helper server URL) of Docker Hub, as Docker writes it.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The user name that marks a helper's secret as an identity token.
pub(crate) const IDENTITY_TOKEN_USER: &str = "<token>";

/// A user name and password (or token) for basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic ...` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// What a registry host is authenticated with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password: basic authentication, or a token fetched with them.
    Password(Credentials),
    /// An identity token (`identitytoken` in `config.json`): an OAuth2 refresh token that the
    /// token realm exchanges for access tokens (`grant_type=refresh_token`).
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Password(c) => c.fmt(f),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credential {
    /// The user name and password, unless this is an identity token.
    pub fn password(&self) -> Option<&Credentials> {
        match self {
            Credential::Password(c) => Some(c),
            Credential::IdentityToken(_) => None,
        }
    }
}

/// Credentials by registry host, from Docker's `config.json`: the `auths` section and the
/// credential helpers named by `credHelpers` (per host) and `credsStore` (all hosts).
/// Invariant: map keys are bare hosts (`host[:port]`), Docker Hub's under `docker.io`.
#[derive(Clone, Debug, Default)]
pub struct DockerCredentials {
    by_host: HashMap<String, Credential>,
    helpers: HashMap<String, String>,
    default_helper: Option<String>,
    /// Where `docker-credential-<name>` programs are looked up; `None` means `$PATH`.
    helper_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Where Docker's `config.json` is: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`; `None` without either variable.
pub fn docker_config_path() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|dir| dir.join("config.json"))
}

impl DockerCredentials {
    /// Reads `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; no file means no
    /// credentials.
    pub fn load() -> Result<DockerCredentials, RegistryError> {
        match docker_config_path() {
            Some(path) => Self::load_from(&path),
            None => Ok(DockerCredentials::default()),
        }
    }

    /// Reads one `config.json`; a missing file means no credentials.
    pub fn load_from(path: &Path) -> Result<DockerCredentials, RegistryError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerCredentials::default())
            }
            Err(source) => {
                return Err(RegistryError::DockerConfigRead {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Self::parse(&text, path)
    }

    /// Parses the text of a `config.json`; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<DockerCredentials, RegistryError> {
        let file: DockerConfigFile =
            serde_json::from_str(text).map_err(|source| RegistryError::DockerConfigParse {
                path: path.to_path_buf(),
                source,
            })?;
        let mut by_host = HashMap::new();
        for (key, entry) in file.auths {
            let host = normalise_auth_key(&key);
            let creds = match (
                &entry.identitytoken,
                &entry.auth,
                &entry.username,
                &entry.password,
            ) {
                (Some(token), _, _, _) if !token.is_empty() => {
                    Credential::IdentityToken(token.clone())
                }
                (_, Some(auth), _, _) if !auth.is_empty() => {
                    Credential::Password(decode_auth(auth).ok_or_else(|| {
                        RegistryError::DockerConfigAuth {
                            path: path.to_path_buf(),
                            host: host.clone(),
                        }
                    })?)
                }
                (_, _, Some(u), Some(p)) => Credential::Password(Credentials {
                    username: u.clone(),
                    password: p.clone(),
                }),
                // An entry that only names a credential helper's registry: nothing to use.
                _ => continue,
            };
            by_host.insert(host, creds);
        }
        let helpers = file
            .cred_helpers
            .into_iter()
            .filter(|(_, helper)| !helper.is_empty())
            .map(|(key, helper)| (normalise_auth_key(&key), helper))
            .collect();
        Ok(DockerCredentials {
            by_host,
            helpers,
            default_helper: file.creds_store.filter(|h| !h.is_empty()),
            helper_dir: None,
        })
    }

    /// Looks credential helpers up in `dir` instead of `$PATH`.
    pub fn with_helper_dir(mut self, dir: &Path) -> Self {
        self.helper_dir = Some(dir.to_path_buf());
        self
    }

    /// The user name and password for a registry host (see [`DockerCredentials::resolve`]);
    /// `None` also when the host has an identity token instead.
    pub fn lookup(&self, host: &str) -> Result<Option<Credentials>, RegistryError> {
        Ok(self.resolve(host)?.and_then(|c| c.password().cloned()))
    }

    /// The credential for a registry host: from its credential helper (`credHelpers`, else
    /// `credsStore`) when one is configured and knows the host, else from `auths`. A helper
    /// that is not installed or has nothing for the host means "no credentials from it"; a
    /// helper that answers garbage is an error.
    pub fn resolve(&self, host: &str) -> Result<Option<Credential>, RegistryError> {
        let key = normalise_auth_key(host);
        let helper = self.helpers.get(&key).or(self.default_helper.as_ref());
        if let Some(helper) = helper {
            let helper = CredentialHelper::new(helper, self.helper_dir.as_deref());
            if let Some(c) = helper.get(&server_url(&key))? {
                return Ok(Some(c));
            }
        }
        Ok(self.by_host.get(&key).cloned())
    }

    /// Adds or replaces the credentials of `host`.
    pub fn insert(&mut self, host: &str, creds: Credentials) {
        self.insert_credential(host, Credential::Password(creds));
    }

    /// Adds or replaces the credential (password or identity token) of `host`.
    pub fn insert_credential(&mut self, host: &str, credential: Credential) {
        self.by_host.insert(normalise_auth_key(host), credential);
    }

    /// The `auths` user name and password for a registry host, if any (no helpers are run).
    pub fn get(&self, host: &str) -> Option<&Credentials> {
        self.by_host
            .get(&normalise_auth_key(host))
            .and_then(Credential::password)
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://h:5000/x` → `h:5000`.
pub(crate) fn normalise_auth_key(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    if is_docker_hub(host) {
        rbuild_types::DEFAULT_REGISTRY.to_string()
    } else {
        host.to_string()
    }
}

/// The server name Docker writes for a normalised host: Docker Hub's
/// [`DOCKER_HUB_AUTH_KEY`], else the host itself.
pub fn server_url(host: &str) -> String {
    let key = normalise_auth_key(host);
    if key == rbuild_types::DEFAULT_REGISTRY {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        key
    }
}

fn decode_auth(auth: &str) -> Option<Credentials> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_config_auths() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        let text = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
                "127.0.0.1:5000":{{"username":"bob","password":"pw"}},
                "helper.example":{{}}}},"credsStore":"desktop"}}"#
        );
        let creds = DockerCredentials::parse(&text, Path::new("config.json")).unwrap();
        let hub = creds.get("registry-1.docker.io").unwrap();
        assert_eq!(hub.username, "alice");
        assert_eq!(hub.password, "s3cr:et");
        assert_eq!(creds.get("docker.io"), Some(hub));
        assert_eq!(creds.get("127.0.0.1:5000").unwrap().username, "bob");
        assert!(creds.get("helper.example").is_none());
        assert!(format!("{hub:?}").contains("redacted"));
    }

    #[test]
    fn bad_auth_field_is_an_error_naming_the_file() {
        let err = DockerCredentials::parse(
            r#"{"auths":{"x.example":{"auth":"!!!"}}}"#,
            Path::new("/home/u/.docker/config.json"),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/home/u/.docker/config.json") && msg.contains("x.example"));
    }

    #[test]
    fn missing_docker_config_means_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let creds = DockerCredentials::load_from(&dir.path().join("config.json")).unwrap();
        assert!(creds.get("docker.io").is_none());
    }

    #[test]
    fn credential_helpers_come_before_auths() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\ncase \"$server\" in\n  https://index.docker.io/v1/) echo '{\"ServerURL\":\"x\",\"Username\":\"hub-user\",\"Secret\":\"hub-pw\"}' ;;\n  bad.example) echo 'not json' ;;\n  *) echo 'credentials not found' ; exit 1 ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("file-user:pw");
        let text = format!(
            r#"{{"auths":{{"docker.io":{{"auth":"{auth}"}},"other.example":{{"auth":"{auth}"}}}},
                "credsStore":"fake","credHelpers":{{"gone.example":"missing"}}}}"#
        );
        let creds = DockerCredentials::parse(&text, Path::new("config.json"))
            .unwrap()
            .with_helper_dir(dir.path());
        let hub = creds.lookup("registry-1.docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub-user", "hub-pw")
        );
        // The helper has nothing: fall back to auths.
        assert_eq!(
            creds.lookup("other.example").unwrap().unwrap().username,
            "file-user"
        );
        assert_eq!(creds.lookup("nothing.example").unwrap(), None);
        // A helper that is not installed means no credentials from it.
        assert_eq!(creds.lookup("gone.example").unwrap(), None);
        let err = creds.lookup("bad.example").unwrap_err();
        assert!(err.to_string().contains("docker-credential-fake"), "{err}");
    }

    #[test]
    fn basic_header() {
        let c = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        assert_eq!(c.basic_header(), "Basic dTpw");
    }
}
