//! Writing Docker's `config.json` for `rbuild login` and `rbuild logout`, as the Docker CLI
//! does: the credential goes to the credential helper of its server (`credHelpers`, else
//! `credsStore`), which leaves an empty `auths.<server>` entry in the file, or else into
//! `auths.<server>.auth` (base64 of `user:password`; an identity token as `identitytoken`).
//! Docker Hub's key is `https://index.docker.io/v1/`, other servers are their `host[:port]`.
//!
//! Every other field of the file is kept as it was. The file is replaced atomically (a
//! temporary file in its directory, fsynced, renamed over it) with mode 0600; a
//! `config.json` that is a symlink is written through to its target.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{docker_config_path, normalise_auth_key, server_url, Credential, CredentialHelper};
use crate::registry::error::RegistryError;

/// A `config.json` read for editing.
#[derive(Debug)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// Where [`DockerConfig::save_login`] put a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// In the file itself (`auths`).
    File(PathBuf),
    /// In the credential helper `docker-credential-<name>`.
    Helper(String),
}

/// What [`DockerConfig::remove_login`] did.
#[derive(Debug)]
pub struct Removed {
    /// The file had an entry for the host (now gone).
    pub from_file: bool,
    /// The credential helper could not erase the host's credential.
    pub helper_warning: Option<RegistryError>,
}

impl DockerConfig {
    /// The file of the environment (`$DOCKER_CONFIG`, else `~/.docker`).
    pub fn open_default() -> Result<DockerConfig, RegistryError> {
        let path = docker_config_path().ok_or(RegistryError::DockerConfigUnknown)?;
        Self::open(&path)
    }

    /// Reads `path`; a missing file is an empty configuration.
    pub fn open(path: &Path) -> Result<DockerConfig, RegistryError> {
        let doc = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| {
                RegistryError::DockerConfigParse {
                    path: path.to_path_buf(),
                    source,
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(source) => {
                return Err(RegistryError::DockerConfigRead {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The file this is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name of the credential helper for `host`: its `credHelpers` entry, else
    /// `credsStore`.
    pub fn helper_for(&self, host: &str) -> Option<String> {
        let key = normalise_auth_key(host);
        let named = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        self.doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|helpers| {
                helpers
                    .iter()
                    .find(|(k, _)| normalise_auth_key(k) == key)
                    .and_then(|(_, v)| named(v))
            })
            .or_else(|| self.doc.get("credsStore").and_then(named))
    }

    /// Stores `credential` for `host` (in its credential helper, or in the file) and writes
    /// the file.
    pub fn save_login(
        &mut self,
        host: &str,
        credential: &Credential,
    ) -> Result<Stored, RegistryError> {
        let server = server_url(host);
        let (entry, stored) = match self.helper_for(host) {
            Some(name) => {
                CredentialHelper::new(&name, None).store(&server, credential)?;
                (Map::new(), Stored::Helper(name))
            }
            None => (auth_entry(credential), Stored::File(self.path.clone())),
        };
        self.remove_entries(host);
        self.auths()?.insert(server, Value::Object(entry));
        self.write()?;
        Ok(stored)
    }

    /// Removes what is stored for `host`, from its credential helper and from the file. As
    /// with `docker logout`, a helper that cannot erase (it has nothing for the host, say)
    /// does not stop the file's entry from going: its error is handed back as a warning.
    pub fn remove_login(&mut self, host: &str) -> Result<Removed, RegistryError> {
        let helper_warning = self.helper_for(host).and_then(|name| {
            CredentialHelper::new(&name, None)
                .erase(&server_url(host))
                .err()
        });
        let from_file = self.remove_entries(host);
        if from_file {
            self.write()?;
        }
        Ok(Removed {
            from_file,
            helper_warning,
        })
    }

    /// Removes every `auths` key that names `host` (`h`, `https://h`, `http://h/v1/`…).
    fn remove_entries(&mut self, host: &str) -> bool {
        let key = normalise_auth_key(host);
        let Some(auths) = self.doc.get_mut("auths").and_then(Value::as_object_mut) else {
            return false;
        };
        let before = auths.len();
        auths.retain(|k, _| normalise_auth_key(k) != key);
        auths.len() != before
    }

    /// The `auths` object, created when missing.
    fn auths(&mut self) -> Result<&mut Map<String, Value>, RegistryError> {
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if auths.is_null() {
            *auths = Value::Object(Map::new());
        }
        auths
            .as_object_mut()
            .ok_or_else(|| RegistryError::DockerConfigShape {
                path: self.path.clone(),
                field: "auths",
            })
    }

    /// Replaces the file atomically, mode 0600, as Docker indents it (tabs).
    fn write(&self) -> Result<(), RegistryError> {
        let target = match std::fs::canonicalize(&self.path) {
            Ok(resolved) => resolved,
            Err(_) => self.path.clone(),
        };
        let err = |source| RegistryError::DockerConfigWrite {
            path: target.clone(),
            source,
        };
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
        let mut bytes = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut bytes, formatter);
        serde::Serialize::serialize(&self.doc, &mut ser)
            .map_err(|e| err(std::io::Error::other(e)))?;
        bytes.push(b'\n');
        // NamedTempFile creates its file with mode 0600.
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json.")
            .tempfile_in(dir)
            .map_err(err)?;
        std::io::Write::write_all(&mut tmp, &bytes).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&target).map_err(|e| err(e.error))?;
        Ok(())
    }
}

/// The `auths` entry of a credential kept in the file.
fn auth_entry(credential: &Credential) -> Map<String, Value> {
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let mut entry = Map::new();
    match credential {
        Credential::Password(c) => {
            entry.insert(
                "auth".into(),
                b64(format!("{}:{}", c.username, c.password)).into(),
            );
        }
        Credential::IdentityToken(t) => {
            entry.insert("identitytoken".into(), t.clone().into());
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::super::{Credentials, DockerCredentials};
    use super::*;

    fn alice() -> Credential {
        Credential::Password(Credentials {
            username: "alice".into(),
            password: "s3cret".into(),
        })
    }

    #[test]
    fn login_and_logout_keep_other_fields_and_write_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("docker/config.json");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            &path,
            r#"{"auths":{"https://other.example":{"auth":"eDp5"}},"psFormat":"table","proxies":{"default":{"httpProxy":"p"}}}"#,
        )
        .expect("write");
        let mut config = DockerConfig::open(&path).expect("open");
        let stored = config.save_login("docker.io", &alice()).expect("login");
        assert_eq!(stored, Stored::File(path.clone()));
        config
            .save_login("http://r.example:5000/v2/", &alice())
            .expect("login");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let doc: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(doc["psFormat"], "table");
        assert_eq!(doc["proxies"]["default"]["httpProxy"], "p");
        assert_eq!(doc["auths"]["https://other.example"]["auth"], "eDp5");
        assert_eq!(doc["auths"][DOCKER_HUB_KEY]["auth"], "YWxpY2U6czNjcmV0");
        assert_eq!(doc["auths"]["r.example:5000"]["auth"], "YWxpY2U6czNjcmV0");
        let creds = DockerCredentials::load_from(&path).expect("load");
        assert_eq!(
            creds
                .get("registry-1.docker.io")
                .map(|c| c.username.as_str()),
            Some("alice")
        );

        let mut config = DockerConfig::open(&path).expect("open");
        let removed = config.remove_login("index.docker.io").expect("logout");
        assert!(removed.from_file && removed.helper_warning.is_none());
        let again = config
            .remove_login("index.docker.io")
            .expect("logout twice");
        assert!(!again.from_file);
        let doc: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert!(doc["auths"].get(DOCKER_HUB_KEY).is_none());
        assert_eq!(doc["psFormat"], "table");
        assert!(doc["auths"].get("r.example:5000").is_some());
    }

    #[test]
    fn identity_tokens_are_written_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        let mut config = DockerConfig::open(&path).expect("open missing");
        config
            .save_login("r.example", &Credential::IdentityToken("refresh-me".into()))
            .expect("login");
        let creds = DockerCredentials::load_from(&path).expect("load");
        assert_eq!(
            creds.resolve("r.example").expect("resolve"),
            Some(Credential::IdentityToken("refresh-me".into()))
        );
        // No user name and password for basic authentication.
        assert_eq!(creds.lookup("r.example").expect("lookup"), None);
    }

    #[test]
    fn helpers_are_chosen_per_host_then_creds_store() {
        let config = DockerConfig {
            path: PathBuf::from("config.json"),
            doc: serde_json::from_str(
                r#"{"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud","https://index.docker.io/v1/":"hub"}}"#,
            )
            .expect("json"),
        };
        assert_eq!(config.helper_for("gcr.io").as_deref(), Some("gcloud"));
        assert_eq!(config.helper_for("docker.io").as_deref(), Some("hub"));
        assert_eq!(
            config.helper_for("other.example").as_deref(),
            Some("desktop")
        );
    }

    #[test]
    fn a_garbled_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").expect("write");
        let err = DockerConfig::open(&path).expect_err("garbled");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        std::fs::write(&path, r#"{"auths":[]}"#).expect("write");
        let err = DockerConfig::open(&path)
            .expect("an object")
            .save_login("r.example", &alice())
            .expect_err("auths is a list");
        assert!(err.to_string().contains("auths"), "{err}");
    }

    const DOCKER_HUB_KEY: &str = super::super::DOCKER_HUB_AUTH_KEY;
}
