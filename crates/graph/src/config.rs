//! The image configuration the build emits, in our own terms (the oci crate maps it to and from
//! OCI/Docker JSON).

use std::collections::{BTreeMap, BTreeSet};

use rbuild_types::Platform;
use serde::{Deserialize, Serialize};

/// Runtime configuration plus history of an image. Fields follow Docker's image config; a base
/// image's config is the starting point of a stage's config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub platform: Platform,
    /// The image's `author` (`MAINTAINER`, or the base image's); left out of the JSON when
    /// unset, so graphs of Dockerfiles without it serialise as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// `KEY=value`, in order.
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    /// `80/tcp` style keys.
    pub exposed_ports: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub shell: Option<Vec<String>>,
    pub on_build: Vec<String>,
    pub args_escaped: bool,
    /// One entry per instruction of the base image(s) and of this build, oldest first.
    pub history: Vec<HistoryEntry>,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            platform: Platform::host(),
            author: None,
            env: Vec::new(),
            cmd: None,
            entrypoint: None,
            working_dir: String::new(),
            user: String::new(),
            labels: BTreeMap::new(),
            exposed_ports: BTreeSet::new(),
            volumes: BTreeSet::new(),
            stop_signal: None,
            healthcheck: None,
            shell: None,
            on_build: Vec::new(),
            args_escaped: false,
            history: Vec::new(),
        }
    }
}

impl ImageConfig {
    /// The value of an environment variable, if set.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v)
        })
    }

    /// Sets or replaces an environment variable, keeping the position of an existing one.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .env
            .iter_mut()
            .find(|kv| kv.split_once('=').map(|(k, _)| k) == Some(key))
        {
            Some(slot) => *slot = entry,
            None => self.env.push(entry),
        }
    }
}

/// One history entry, as in the OCI image config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// RFC 3339 time; `None` lets the exporter fill in the build time (or SOURCE_DATE_EPOCH).
    pub created: Option<String>,
    pub created_by: String,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

/// HEALTHCHECK settings; durations in nanoseconds as Docker stores them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub start_period: Option<u64>,
    pub start_interval: Option<u64>,
    pub retries: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_set_replaces_in_place() {
        let mut c = ImageConfig::default();
        c.set_env("PATH", "/bin");
        c.set_env("A", "1");
        c.set_env("PATH", "/usr/bin:/bin");
        assert_eq!(c.env, vec!["PATH=/usr/bin:/bin", "A=1"]);
        assert_eq!(c.env_var("A"), Some("1"));
        assert_eq!(c.env_var("B"), None);
    }
}
