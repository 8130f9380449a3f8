//! Registry authentication: Docker's `config.json` credentials and `WWW-Authenticate`
//! challenges.
//!
//! A request is first sent with whatever authorization is cached for its host and scope; on
//! `401` the client reads the challenge: `Bearer realm=..,service=..,scope=..` makes it fetch a
//! token from the realm (anonymously, or with basic credentials when `config.json` has some
//! for the host), `Basic` makes it retry with the basic credentials. Credentials are looked up
//! by registry host; Docker Hub's `https://index.docker.io/v1/` key counts for all its hosts.
//! Credential helpers (`credHelpers` per host, `credsStore` for all) are asked first, by
//! running `docker-credential-<name> get` with the server on stdin, as the Docker CLI does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::config::is_docker_hub;
use super::error::RegistryError;

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

/// Credentials by registry host, from Docker's `config.json`: the `auths` section and the
/// credential helpers named by `credHelpers` (per host) and `credsStore` (all hosts).
/// Invariant: map keys are bare hosts (`host[:port]`), Docker Hub's under `docker.io`.
#[derive(Clone, Debug, Default)]
pub struct DockerCredentials {
    by_host: HashMap<String, Credentials>,
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

/// What `docker-credential-<name> get` prints.
#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl DockerCredentials {
    /// Reads `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; no file means no
    /// credentials.
    pub fn load() -> Result<DockerCredentials, RegistryError> {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
        match dir {
            Some(dir) => Self::load_from(&dir.join("config.json")),
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
            let creds = match (&entry.auth, &entry.username, &entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    decode_auth(auth).ok_or_else(|| RegistryError::DockerConfigAuth {
                        path: path.to_path_buf(),
                        host: host.clone(),
                    })?
                }
                (_, Some(u), Some(p)) => Credentials {
                    username: u.clone(),
                    password: p.clone(),
                },
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

    /// The credentials for a registry host: from its credential helper (`credHelpers`, else
    /// `credsStore`) when one is configured and knows the host, else from `auths`. A helper
    /// that is not installed or has nothing for the host means "no credentials from it"; a
    /// helper that answers garbage is an error.
    pub fn lookup(&self, host: &str) -> Result<Option<Credentials>, RegistryError> {
        let key = normalise_auth_key(host);
        let helper = self.helpers.get(&key).or(self.default_helper.as_ref());
        if let Some(helper) = helper {
            if let Some(c) = self.run_helper(helper, &key)? {
                return Ok(Some(c));
            }
        }
        Ok(self.by_host.get(&key).cloned())
    }

    fn run_helper(&self, helper: &str, key: &str) -> Result<Option<Credentials>, RegistryError> {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let program = format!("docker-credential-{helper}");
        let program = match &self.helper_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        let server = if key == rbuild_types::DEFAULT_REGISTRY {
            "https://index.docker.io/v1/".to_string()
        } else {
            key.to_string()
        };
        let run_err = |source| RegistryError::CredentialHelperRun {
            program: program.clone(),
            source,
        };
        let mut attempts = 0;
        let mut child = loop {
            let spawned = Command::new(&program)
                .arg("get")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn();
            match spawned {
                Ok(c) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                // ETXTBSY: the program was just written and another thread's fork still
                // holds it open; that passes within milliseconds.
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 20 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(run_err(e)),
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(server.as_bytes()).map_err(run_err)?;
        }
        let out = child.wait_with_output().map_err(run_err)?;
        if !out.status.success() {
            // "credentials not found": the helper has nothing for this host.
            return Ok(None);
        }
        let reply: HelperReply = serde_json::from_slice(&out.stdout).map_err(|source| {
            RegistryError::CredentialHelperReply {
                program: program.clone(),
                host: key.to_string(),
                source,
            }
        })?;
        // `<token>` marks an identity token for an OAuth flow rbuild does not do.
        if reply.username.is_empty() || reply.username == "<token>" {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username: reply.username,
            password: reply.secret,
        }))
    }

    /// Adds or replaces the credentials of `host`.
    pub fn insert(&mut self, host: &str, creds: Credentials) {
        self.by_host.insert(normalise_auth_key(host), creds);
    }

    /// The `auths` credentials for a registry host, if any (no helpers are run).
    pub fn get(&self, host: &str) -> Option<&Credentials> {
        self.by_host.get(&normalise_auth_key(host))
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://h:5000/x` → `h:5000`.
fn normalise_auth_key(key: &str) -> String {
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

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

impl Challenge {
    /// Parses `Bearer realm="..",service="..",scope=".."` or `Basic realm=".."`. Returns
    /// `None` for other schemes or a Bearer challenge without a realm.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = match header.find(char::is_whitespace) {
            Some(i) => (&header[..i], &header[i..]),
            None => (header, ""),
        };
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let get = |k: &str| {
            params
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm").filter(|r| !r.is_empty())?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

/// `k="v", k2=v2` → pairs; quoted values may contain commas and `\"` escapes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        _ => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_string();
            }
        }
        let key = key.trim().to_string();
        if !key.is_empty() {
            out.push((key, value));
        }
        if chars.peek().is_none() {
            break;
        }
    }
    out
}

/// The JSON a token endpoint answers with (Docker uses `token`, OAuth2 `access_token`).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
}

impl TokenResponse {
    pub(crate) fn into_token(self) -> Option<String> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            })
        );
    }

    #[test]
    fn parses_unquoted_and_other_schemes() {
        assert_eq!(
            Challenge::parse("bearer realm=http://x/t, service=s"),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: Some("s".into()),
                scope: None,
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
        assert_eq!(Challenge::parse(""), None);
    }

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
