//! Registry configuration: the `[registry."<host>"]` tables of BuildKit's `buildkitd.toml`.
//!
//! ```toml
//! [registry."docker.io"]
//! mirrors = ["127.0.0.1:5000"]
//! [registry."127.0.0.1:5000"]
//! http = true
//! insecure = true   # TLS without certificate verification
//! [registry."registry.example.com"]
//! ca = ["/etc/certs/example-ca.pem"]   # trusted in addition to the system's CAs
//! [[registry."registry.example.com".keypair]]
//! key = "/etc/certs/client.key"        # a client certificate (mutual TLS)
//! cert = "/etc/certs/client.pem"
//! ```
//!
//! The file is `$RBUILD_CONFIG`, else `$XDG_CONFIG_HOME/rbuild/config.toml` (XDG default
//! `~/.config`), else `/etc/rbuild/config.toml`; the first candidate that exists is read, and
//! no file at all means the defaults. Unknown keys and sections are ignored, so a whole
//! `buildkitd.toml` can be used as is.
//!
//! [`RegistryConfig::endpoints`] turns a registry host into the ordered list of places to try:
//! each mirror (with its own `http`/`insecure` settings), then the registry itself
//! (`docker.io` is served by `registry-1.docker.io`). Loopback registries (`localhost`,
//! `127.0.0.0/8`, `[::1]`) default to plain HTTP, as Docker treats them as insecure registries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use rbuild_types::DEFAULT_REGISTRY;

use crate::http::{KeyPair, TlsSettings};

/// The host that actually serves Docker Hub's registry API.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// Why the registry configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading registry config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing registry config {origin}: {source}")]
    Parse {
        /// The file name, or `<string>` for [`RegistryConfig::from_toml_str`].
        origin: String,
        #[source]
        source: toml::de::Error,
    },
}

/// Settings of one registry host (`[registry."<host>"]`). Keys BuildKit knows but rbuild does
/// not use are accepted and ignored. The TLS settings (`insecure`, `ca`, `keypair`) hold for
/// every HTTPS request to the host: registry API, `ADD <url>` and URL contexts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct HostConfig {
    /// Hosts (optionally `http://`/`https://` prefixed, optionally with a path) tried before
    /// this registry, in order.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Plain HTTP instead of HTTPS. `None` means the default (HTTP only for loopback hosts).
    #[serde(default)]
    pub http: Option<bool>,
    /// HTTPS without certificate verification.
    #[serde(default)]
    pub insecure: Option<bool>,
    /// PEM files of CA certificates trusted for this host besides the system's.
    #[serde(default)]
    pub ca: Vec<PathBuf>,
    /// The client certificate to present (BuildKit's list; rbuild can present one).
    #[serde(default)]
    pub keypair: Vec<KeyPair>,
}

/// The parsed configuration. Invariant: keys of `registry` are host names as written in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct RegistryConfig {
    #[serde(default)]
    registry: BTreeMap<String, HostConfig>,
}

/// One place to send registry API requests to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]`, as errors and credentials name it (`registry-1.docker.io` for Docker Hub).
    pub host: String,
    /// `http(s)://host[:port][/path]`, without a trailing slash; API paths (`/v2/...`) are appended.
    pub base_url: String,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// A mirror, rather than the registry the reference names.
    pub mirror: bool,
}

impl RegistryConfig {
    /// Loads the configuration from the process environment (see the module docs).
    pub fn load() -> Result<RegistryConfig, ConfigError> {
        Self::load_with_env(|k| std::env::var_os(k).map(PathBuf::from))
    }

    /// Like [`RegistryConfig::load`], with environment lookups going through `env` (for tests).
    pub fn load_with_env(
        env: impl Fn(&str) -> Option<PathBuf>,
    ) -> Result<RegistryConfig, ConfigError> {
        for path in Self::candidate_paths(env) {
            match std::fs::read_to_string(&path) {
                Ok(text) => return Self::parse(&text, &path.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ConfigError::Read { path, source }),
            }
        }
        Ok(RegistryConfig::default())
    }

    /// Reads one file; a missing file means the defaults.
    pub fn load_from(path: &Path) -> Result<RegistryConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistryConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The files [`RegistryConfig::load`] looks at, in order.
    pub fn candidate_paths(env: impl Fn(&str) -> Option<PathBuf>) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(p) = env("RBUILD_CONFIG").filter(|p| !p.as_os_str().is_empty()) {
            out.push(p);
        }
        let xdg = env("XDG_CONFIG_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| env("HOME").map(|h| h.join(".config")));
        if let Some(dir) = xdg {
            out.push(dir.join("rbuild").join("config.toml"));
        }
        out.push(PathBuf::from("/etc/rbuild/config.toml"));
        out
    }

    /// Parses TOML text.
    pub fn from_toml_str(text: &str) -> Result<RegistryConfig, ConfigError> {
        Self::parse(text, "<string>")
    }

    fn parse(text: &str, origin: &str) -> Result<RegistryConfig, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            origin: origin.to_string(),
            source,
        })
    }

    /// Sets the settings of one host (replacing any earlier ones).
    pub fn set_host(&mut self, host: &str, settings: HostConfig) {
        self.registry.insert(host.to_string(), settings);
    }

    /// The settings written for `host`, if any. Docker Hub's aliases (`index.docker.io`,
    /// `registry-1.docker.io`) share the `docker.io` table.
    pub fn host(&self, host: &str) -> Option<&HostConfig> {
        self.registry.get(host).or_else(|| {
            if is_docker_hub(host) {
                [DEFAULT_REGISTRY, "index.docker.io", DOCKER_HUB_HOST]
                    .iter()
                    .find_map(|alias| self.registry.get(*alias))
            } else {
                None
            }
        })
    }

    /// How TLS is set up for requests to `host` (`host[:port]`; Docker Hub's hosts share the
    /// `docker.io` table).
    pub fn tls(&self, host: &str) -> TlsSettings {
        match self.host(host) {
            Some(settings) => TlsSettings {
                insecure: settings.insecure.unwrap_or(false),
                ca: settings.ca.clone(),
                keypairs: settings.keypair.clone(),
            },
            None => TlsSettings::default(),
        }
    }

    /// The endpoints to try for `registry` (a reference's registry part), in order: its
    /// mirrors, then the registry itself.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let mut out = self.mirror_endpoints(registry);
        out.push(self.registry_endpoint(registry));
        out
    }

    /// The mirrors configured for `registry`, in order.
    pub fn mirror_endpoints(&self, registry: &str) -> Vec<Endpoint> {
        self.host(registry)
            .map(|settings| {
                settings
                    .mirrors
                    .iter()
                    .filter_map(|m| self.mirror_endpoint(m))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The registry itself (Docker Hub: `registry-1.docker.io`).
    pub fn registry_endpoint(&self, registry: &str) -> Endpoint {
        let host = if is_docker_hub(registry) {
            DOCKER_HUB_HOST.to_string()
        } else {
            registry.to_string()
        };
        let (http, insecure) = self.transport(registry, &host);
        Endpoint {
            base_url: format!("{}://{host}", if http { "http" } else { "https" }),
            host,
            insecure,
            mirror: false,
        }
    }

    fn mirror_endpoint(&self, mirror: &str) -> Option<Endpoint> {
        let mirror = mirror.trim().trim_end_matches('/');
        let (scheme, rest) = if let Some(r) = mirror.strip_prefix("http://") {
            (Some("http"), r)
        } else if let Some(r) = mirror.strip_prefix("https://") {
            (Some("https"), r)
        } else {
            (None, mirror)
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() {
            return None;
        }
        let (http, insecure) = self.transport(host, host);
        let scheme = scheme.unwrap_or(if http { "http" } else { "https" });
        Some(Endpoint {
            host: host.to_string(),
            base_url: format!("{scheme}://{host}{path}"),
            insecure,
            mirror: true,
        })
    }

    /// `(plain http, skip TLS verification)` for a host: explicit settings, else HTTP for loopback.
    fn transport(&self, config_key: &str, host: &str) -> (bool, bool) {
        let settings = self.host(config_key);
        let http = settings
            .and_then(|s| s.http)
            .unwrap_or_else(|| is_loopback(host));
        let insecure = settings.and_then(|s| s.insecure).unwrap_or(false);
        (http, insecure)
    }
}

/// Whether `host` names Docker Hub.
pub fn is_docker_hub(host: &str) -> bool {
    matches!(host, DEFAULT_REGISTRY | "index.docker.io" | DOCKER_HUB_HOST)
}

/// Whether `host[:port]` is a loopback address or `localhost`.
fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
debug = true
[worker.oci]
enabled = true

[registry."docker.io"]
mirrors = ["127.0.0.1:5000", "https://mirror.example.com/hub/"]

[registry."127.0.0.1:5000"]
http = true
insecure = true
ca = ["/etc/ca.pem"]

[registry."mirror.example.com"]
insecure = true
"#;

    #[test]
    fn parses_buildkit_file_ignoring_unknown_keys() {
        let cfg = RegistryConfig::from_toml_str(SAMPLE).unwrap();
        let hub = cfg.host("docker.io").unwrap();
        assert_eq!(hub.mirrors.len(), 2);
        let local = cfg.host("127.0.0.1:5000").unwrap();
        assert_eq!(local.http, Some(true));
        assert_eq!(local.insecure, Some(true));
    }

    #[test]
    fn tls_settings_per_host() {
        let cfg = RegistryConfig::from_toml_str(
            r#"
[registry."r.example:5443"]
ca = ["/etc/ca.pem", "/etc/ca2.pem"]
[[registry."r.example:5443".keypair]]
key = "/etc/client.key"
cert = "/etc/client.pem"
[registry."docker.io"]
insecure = true
"#,
        )
        .unwrap();
        let tls = cfg.tls("r.example:5443");
        assert!(!tls.insecure);
        assert_eq!(
            tls.ca,
            vec![PathBuf::from("/etc/ca.pem"), PathBuf::from("/etc/ca2.pem")]
        );
        assert_eq!(
            tls.keypairs,
            vec![KeyPair {
                key: "/etc/client.key".into(),
                cert: "/etc/client.pem".into(),
            }]
        );
        assert!(cfg.tls("registry-1.docker.io").insecure);
        assert_eq!(cfg.tls("other.example"), TlsSettings::default());
    }

    #[test]
    fn endpoints_mirrors_first_then_registry() {
        let cfg = RegistryConfig::from_toml_str(SAMPLE).unwrap();
        let eps = cfg.endpoints("docker.io");
        let got: Vec<(&str, &str, bool, bool)> = eps
            .iter()
            .map(|e| (e.host.as_str(), e.base_url.as_str(), e.insecure, e.mirror))
            .collect();
        assert_eq!(
            got,
            vec![
                ("127.0.0.1:5000", "http://127.0.0.1:5000", true, true),
                (
                    "mirror.example.com",
                    "https://mirror.example.com/hub",
                    true,
                    true
                ),
                (
                    "registry-1.docker.io",
                    "https://registry-1.docker.io",
                    false,
                    false
                ),
            ]
        );
        // Docker Hub aliases share the docker.io table.
        assert_eq!(cfg.endpoints("index.docker.io").len(), 3);
    }

    #[test]
    fn defaults_https_except_loopback() {
        let cfg = RegistryConfig::default();
        let cases = [
            ("example.com", "https://example.com"),
            ("example.com:443", "https://example.com:443"),
            ("localhost:5000", "http://localhost:5000"),
            ("127.0.0.2:5000", "http://127.0.0.2:5000"),
            ("[::1]:5000", "http://[::1]:5000"),
            ("docker.io", "https://registry-1.docker.io"),
        ];
        for (host, url) in cases {
            let eps = cfg.endpoints(host);
            assert_eq!(eps.len(), 1, "{host}");
            assert_eq!(eps[0].base_url, url, "{host}");
            assert!(!eps[0].mirror);
        }
    }

    #[test]
    fn explicit_http_false_wins_over_loopback_default() {
        let cfg =
            RegistryConfig::from_toml_str("[registry.\"localhost:5000\"]\nhttp = false\n").unwrap();
        assert_eq!(
            cfg.endpoints("localhost:5000")[0].base_url,
            "https://localhost:5000"
        );
    }

    #[test]
    fn explicit_scheme_on_mirror_wins() {
        let cfg = RegistryConfig::from_toml_str(
            "[registry.\"docker.io\"]\nmirrors = [\"http://m.example\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.endpoints("docker.io")[0].base_url, "http://m.example");
    }

    #[test]
    fn bad_toml_names_origin() {
        let err = RegistryConfig::from_toml_str("[registry.\"x\"]\nhttp = \"yes\"\n").unwrap_err();
        assert!(err.to_string().contains("<string>"), "{err}");
    }

    #[test]
    fn load_order_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let xdg = dir.path().join("xdg");
        std::fs::create_dir_all(xdg.join("rbuild")).unwrap();
        std::fs::write(
            xdg.join("rbuild/config.toml"),
            "[registry.\"a.example\"]\nhttp = true\n",
        )
        .unwrap();
        let missing = dir.path().join("missing.toml");
        let env = |k: &str| match k {
            "RBUILD_CONFIG" => Some(missing.clone()),
            "XDG_CONFIG_HOME" => Some(xdg.clone()),
            _ => None,
        };
        let paths = RegistryConfig::candidate_paths(env);
        assert_eq!(paths[0], missing);
        assert_eq!(paths[1], xdg.join("rbuild/config.toml"));
        assert_eq!(paths[2], PathBuf::from("/etc/rbuild/config.toml"));
        let cfg = RegistryConfig::load_with_env(env).unwrap();
        assert_eq!(cfg.host("a.example").and_then(|h| h.http), Some(true));
        assert_eq!(
            RegistryConfig::load_from(&missing).unwrap(),
            RegistryConfig::default()
        );
    }
}
