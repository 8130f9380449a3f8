//! `rbuild_graph::ImageConfig` ⇄ OCI image config JSON.
//!
//! Writing produces an OCI config (`application/vnd.oci.image.config.v1+json`) with a fixed
//! field order, so the same inputs always give the same bytes (and config digest = image id).
//! Reading accepts OCI and Docker configs alike (Docker adds fields we ignore and writes
//! `null` for empty lists).

use std::collections::BTreeMap;

use rbuild_graph::{Healthcheck, HistoryEntry, ImageConfig};
use rbuild_types::{Digest, Platform};
use serde::{Deserialize, Serialize};

use crate::OciError;

type EmptyObjectMap = BTreeMap<String, serde_json::Map<String, serde_json::Value>>;

/// The whole config document.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConfigJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: Option<RuntimeJson>,
    #[serde(default)]
    pub rootfs: RootFsJson,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryJson>,
}

/// The `config` object: how to run the image.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<EmptyObjectMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<EmptyObjectMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthcheckJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub retries: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RootFsJson {
    #[serde(rename = "type", default = "layers_type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFsJson {
    fn default() -> Self {
        RootFsJson {
            kind: layers_type(),
            diff_ids: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HistoryJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

fn layers_type() -> String {
    "layers".to_string()
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}
fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// A parsed config: our view of it plus what only the image format carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedConfig {
    pub image: ImageConfig,
    pub diff_ids: Vec<Digest>,
    pub created: Option<String>,
}

fn set_of(items: &std::collections::BTreeSet<String>) -> Option<EmptyObjectMap> {
    (!items.is_empty()).then(|| {
        items
            .iter()
            .map(|k| (k.clone(), serde_json::Map::new()))
            .collect()
    })
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Builds the config document for `config` with layers `diff_ids`, created at `created`.
pub fn to_config_json(
    config: &ImageConfig,
    diff_ids: &[Digest],
    created: Option<&str>,
) -> ConfigJson {
    let runtime = RuntimeJson {
        user: non_empty(&config.user),
        exposed_ports: set_of(&config.exposed_ports),
        env: (!config.env.is_empty()).then(|| config.env.clone()),
        entrypoint: config.entrypoint.clone(),
        cmd: config.cmd.clone(),
        volumes: set_of(&config.volumes),
        working_dir: non_empty(&config.working_dir),
        labels: (!config.labels.is_empty()).then(|| config.labels.clone()),
        stop_signal: config.stop_signal.clone(),
        args_escaped: config.args_escaped,
        healthcheck: config.healthcheck.as_ref().map(|h| HealthcheckJson {
            test: Some(h.test.clone()),
            interval: h.interval.unwrap_or(0),
            timeout: h.timeout.unwrap_or(0),
            start_period: h.start_period.unwrap_or(0),
            start_interval: h.start_interval.unwrap_or(0),
            retries: h.retries.unwrap_or(0),
        }),
        on_build: (!config.on_build.is_empty()).then(|| config.on_build.clone()),
        shell: config.shell.clone(),
    };
    ConfigJson {
        created: created.map(str::to_string),
        author: config.author.clone(),
        architecture: config.platform.architecture.clone(),
        os: config.platform.os.clone(),
        variant: config.platform.variant.clone(),
        config: Some(runtime),
        rootfs: RootFsJson {
            kind: layers_type(),
            diff_ids: diff_ids.to_vec(),
        },
        history: config
            .history
            .iter()
            .map(|h| HistoryJson {
                created: h.created.clone(),
                created_by: non_empty(&h.created_by),
                comment: h.comment.clone(),
                empty_layer: h.empty_layer,
            })
            .collect(),
    }
}

/// Canonical JSON bytes of the config document for `config`.
pub fn to_json(config: &ImageConfig, diff_ids: &[Digest], created: Option<&str>) -> Vec<u8> {
    // Plain structs of strings, numbers and maps with string keys always serialise.
    serde_json::to_vec(&to_config_json(config, diff_ids, created)).unwrap_or_default()
}

/// Parses an OCI or Docker image config; `context` (e.g. its digest) goes into errors.
pub fn parse(bytes: &[u8], context: &str) -> Result<ParsedConfig, OciError> {
    let doc: ConfigJson = serde_json::from_slice(bytes).map_err(|source| OciError::Json {
        what: "image config",
        context: context.to_string(),
        source,
    })?;
    Ok(from_config_json(doc))
}

/// Our view of a parsed config document.
pub fn from_config_json(doc: ConfigJson) -> ParsedConfig {
    let rt = doc.config.unwrap_or_default();
    let keys = |m: Option<EmptyObjectMap>| m.unwrap_or_default().into_keys().collect();
    let image = ImageConfig {
        platform: Platform {
            os: if doc.os.is_empty() {
                "linux".into()
            } else {
                doc.os
            },
            architecture: doc.architecture,
            variant: doc.variant.filter(|v| !v.is_empty()),
        },
        author: doc.author.filter(|a| !a.is_empty()),
        env: rt.env.unwrap_or_default(),
        cmd: rt.cmd,
        entrypoint: rt.entrypoint,
        working_dir: rt.working_dir.unwrap_or_default(),
        user: rt.user.unwrap_or_default(),
        labels: rt.labels.unwrap_or_default(),
        exposed_ports: keys(rt.exposed_ports),
        volumes: keys(rt.volumes),
        stop_signal: rt.stop_signal.filter(|s| !s.is_empty()),
        healthcheck: rt.healthcheck.map(|h| Healthcheck {
            test: h.test.unwrap_or_default(),
            interval: (h.interval != 0).then_some(h.interval),
            timeout: (h.timeout != 0).then_some(h.timeout),
            start_period: (h.start_period != 0).then_some(h.start_period),
            start_interval: (h.start_interval != 0).then_some(h.start_interval),
            retries: (h.retries != 0).then_some(h.retries),
        }),
        shell: rt.shell,
        on_build: rt.on_build.unwrap_or_default(),
        args_escaped: rt.args_escaped,
        history: doc
            .history
            .into_iter()
            .map(|h| HistoryEntry {
                created: h.created,
                created_by: h.created_by.unwrap_or_default(),
                comment: h.comment,
                empty_layer: h.empty_layer,
            })
            .collect(),
    };
    ParsedConfig {
        image,
        diff_ids: doc.rootfs.diff_ids,
        created: doc.created,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_config() -> ImageConfig {
        let mut c = ImageConfig {
            platform: "linux/arm/v7".parse().unwrap(),
            author: Some("Jane <jane@example.com>".into()),
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into(), "--".into()]),
            working_dir: "/app".into(),
            user: "1000:1000".into(),
            stop_signal: Some("SIGTERM".into()),
            healthcheck: Some(Healthcheck {
                test: vec!["CMD-SHELL".into(), "true".into()],
                interval: Some(30_000_000_000),
                timeout: None,
                start_period: Some(1),
                start_interval: None,
                retries: Some(3),
            }),
            shell: Some(vec!["/bin/bash".into(), "-c".into()]),
            on_build: vec!["RUN echo hi".into()],
            args_escaped: true,
            ..ImageConfig::default()
        };
        c.set_env("PATH", "/usr/bin:/bin");
        c.labels.insert("a".into(), "b".into());
        c.exposed_ports.insert("80/tcp".into());
        c.volumes.insert("/data".into());
        c.history = vec![
            HistoryEntry {
                created: Some("2024-01-01T00:00:00Z".into()),
                created_by: "ADD rootfs /".into(),
                comment: Some("base".into()),
                empty_layer: false,
            },
            HistoryEntry {
                created: None,
                created_by: "ENV PATH=/usr/bin:/bin".into(),
                comment: None,
                empty_layer: true,
            },
        ];
        c
    }

    #[test]
    fn round_trip_keeps_everything() {
        let c = full_config();
        let ids = vec![Digest::of(b"layer")];
        let bytes = to_json(&c, &ids, Some("2024-01-01T00:00:00Z"));
        let parsed = parse(&bytes, "test").unwrap();
        assert_eq!(parsed.image, c);
        assert_eq!(parsed.diff_ids, ids);
        assert_eq!(parsed.created.as_deref(), Some("2024-01-01T00:00:00Z"));
        // Deterministic bytes.
        assert_eq!(bytes, to_json(&c, &ids, Some("2024-01-01T00:00:00Z")));
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["config"]["ExposedPorts"]["80/tcp"], serde_json::json!({}));
        assert_eq!(v["rootfs"]["type"], "layers");
        assert_eq!(v["author"], "Jane <jane@example.com>");
        assert_eq!(v["history"][1]["empty_layer"], true);
    }

    #[test]
    fn accepts_docker_config_with_nulls_and_extras() {
        let docker = br#"{"architecture":"amd64","os":"linux","docker_version":"20.10",
          "config":{"Hostname":"","User":"","Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":null,
            "OnBuild":null,"Labels":null,"Image":"sha256:abc","Volumes":null,"WorkingDir":""},
          "container_config":{"Cmd":["/bin/sh"]},
          "created":"2023-05-18T22:34:17.784474286Z",
          "history":[{"created":"2023-05-18T22:34:17Z","created_by":"/bin/sh -c #(nop) ADD file:x in / "},
                     {"created":"2023-05-18T22:34:17Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],
          "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}"#;
        let p = parse(docker, "docker").unwrap();
        assert_eq!(p.image.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(p.image.entrypoint, None);
        assert_eq!(p.image.platform.to_string(), "linux/amd64");
        assert_eq!(p.image.history.len(), 2);
        assert!(p.image.history[1].empty_layer);
        assert_eq!(p.diff_ids, vec![Digest::of(b"")]);
        assert!(matches!(
            parse(b"[1,2]", "bad").unwrap_err(),
            OciError::Json { .. }
        ));
    }
}
