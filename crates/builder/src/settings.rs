//! The configuration file, read once per process: the registries (`[registry."<host>"]`,
//! BuildKit's `buildkitd.toml` form) and automatic garbage collection (`[gc] keep-storage`).
//!
//! The file is the first of [`RegistryConfig::candidate_paths`] that exists (`$RBUILD_CONFIG`,
//! `$XDG_CONFIG_HOME/rbuild/config.toml`, `/etc/rbuild/config.toml`). A registry section that
//! cannot be read is an error; a `[gc]` section that cannot be understood only disables
//! automatic GC, said as a warning after the build (as before: the build itself succeeded).

use std::path::{Path, PathBuf};

use rbuild_oci::registry::config::ConfigError;
use rbuild_oci::registry::RegistryConfig;

use crate::gc::{parse_size, SizeError};

/// What the configuration file says.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub registries: RegistryConfig,
    pub gc: GcSettings,
}

/// Automatic garbage collection after a build.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum GcSettings {
    /// No limit configured.
    #[default]
    Off,
    /// Prune least recently used build cache down to this many bytes.
    KeepStorage(u64),
    /// The `[gc]` section is wrong; said after the build, which skips GC.
    Invalid(GcConfigError),
}

/// Why the `[gc]` section of the file was not understood.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum GcConfigError {
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{}: [gc] keep-storage: {source}", path.display())]
    KeepStorage {
        path: PathBuf,
        #[source]
        source: SizeError,
    },
}

/// The `[gc]` table of the configuration file.
#[derive(Debug, Default, serde::Deserialize)]
struct GcFile {
    #[serde(default)]
    gc: GcTable,
}

#[derive(Debug, Default, serde::Deserialize)]
struct GcTable {
    #[serde(rename = "keep-storage")]
    keep_storage: Option<String>,
}

impl Settings {
    /// Reads the configuration file named by the process environment (see the module docs).
    pub fn load() -> Result<Settings, ConfigError> {
        Self::load_with_env(|k| std::env::var_os(k).map(PathBuf::from))
    }

    /// Like [`Settings::load`], with environment lookups going through `env`.
    pub fn load_with_env(env: impl Fn(&str) -> Option<PathBuf>) -> Result<Settings, ConfigError> {
        for path in RegistryConfig::candidate_paths(env) {
            match std::fs::read_to_string(&path) {
                Ok(text) => return Settings::parse(&text, &path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ConfigError::Read { path, source }),
            }
        }
        Ok(Settings::default())
    }

    /// The settings of the file `path`, whose text is `text`.
    pub fn parse(text: &str, path: &Path) -> Result<Settings, ConfigError> {
        let registries = toml::from_str(text).map_err(|source| ConfigError::Parse {
            origin: path.display().to_string(),
            source,
        })?;
        Ok(Settings {
            registries,
            gc: gc_settings(text, path),
        })
    }
}

fn gc_settings(text: &str, path: &Path) -> GcSettings {
    let file: GcFile = match toml::from_str(text) {
        Ok(file) => file,
        Err(source) => {
            return GcSettings::Invalid(GcConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    match file.gc.keep_storage.as_deref().map(parse_size) {
        None => GcSettings::Off,
        Some(Ok(limit)) => GcSettings::KeepStorage(limit),
        Some(Err(source)) => GcSettings::Invalid(GcConfigError::KeepStorage {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_gives_registries_and_gc() {
        let path = Path::new("/etc/rbuild/config.toml");
        let s = Settings::parse(
            "[registry.\"docker.io\"]\nmirrors = [\"127.0.0.1:5000\"]\n[gc]\nkeep-storage = \"1MB\"\n",
            path,
        )
        .expect("parses");
        assert_eq!(s.gc, GcSettings::KeepStorage(1 << 20));
        assert!(s.registries.host("docker.io").is_some());
        let s = Settings::parse("[gc]\nkeep-storage = \"lots\"\n", path).expect("parses");
        let GcSettings::Invalid(e) = s.gc else {
            panic!("{:?}", s.gc)
        };
        assert!(e.to_string().contains("[gc] keep-storage"), "{e}");
        assert!(Settings::parse("[registry", path).is_err());
    }

    #[test]
    fn the_file_rbuild_config_names_is_read_once_for_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "[gc]\nkeep-storage = \"2KB\"\n").expect("write");
        let env = |k: &str| (k == "RBUILD_CONFIG").then(|| file.clone());
        let s = Settings::load_with_env(env).expect("loads");
        assert_eq!(s.gc, GcSettings::KeepStorage(2048));
        std::fs::write(&file, "[registry.\"x\"\n").expect("write");
        let e = Settings::load_with_env(env).expect_err("bad TOML");
        assert!(e.to_string().contains("config.toml"), "{e}");
    }
}
