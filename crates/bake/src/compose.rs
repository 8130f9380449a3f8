//! Compose files → bake targets: each service with a `build:` section is a target of its name
//! (dots become `_`), all of them in the group `default`. Both shapes are read: the current
//! one with services under `services:`, and version 1 with services at the top level (which
//! buildx no longer reads). `image:` is the first tag; `${VAR}` references in what is built
//! are interpolated from the environment, then the `.env` file beside the compose file.
//! Runtime keys (ports, links, volumes, environment, …) do not change an image: each is
//! reported as a [`Note`] and ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::{without_location, BakeError};
use crate::interp::interpolate;
use crate::model::{Definition, Group, Target};
use crate::Note;

/// The current shape: services under `services:`; other top-level keys (networks, volumes,
/// `version`, extensions) do not build anything.
#[derive(Deserialize)]
struct ComposeFile {
    services: IndexMap<String, Service>,
    /// Top-level secrets, which a service's `build.secrets` names.
    #[serde(default)]
    secrets: IndexMap<String, TopSecret>,
}

/// Where a top-level secret comes from (`external` ones are not known to a build).
#[derive(Deserialize)]
struct TopSecret {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    environment: Option<String>,
}

/// A service's reference to a secret for its build: its name, or `{source, target}` (the
/// build sees it under `target`).
struct SecretRef {
    source: String,
    target: Option<String>,
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            source: String,
            #[serde(default)]
            target: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a secret name or a map with source and target")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretRef, E> {
                Ok(SecretRef {
                    source: v.to_string(),
                    target: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SecretRef, A::Error> {
                let long = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SecretRef {
                    source: long.source,
                    target: long.target,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct Service {
    #[serde(default)]
    build: Option<Build>,
    #[serde(default)]
    image: Option<String>,
    /// The service's platform: the build's when `build.platforms` is not given.
    #[serde(default)]
    platform: Option<String>,
    /// Everything else: runtime settings.
    #[serde(flatten)]
    other: IndexMap<String, IgnoredAny>,
}

/// A service's `build:`: a context path, or the long form.
struct Build(BuildMap);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BuildMap {
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    dockerfile: Option<String>,
    #[serde(default)]
    dockerfile_inline: Option<String>,
    #[serde(default)]
    args: Option<MapOrList>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    cache_from: Option<Vec<String>>,
    #[serde(default)]
    cache_to: Option<Vec<String>>,
    #[serde(default)]
    additional_contexts: Option<MapOrList>,
    #[serde(default)]
    platforms: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<MapOrList>,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    no_cache: Option<bool>,
    #[serde(default)]
    pull: Option<bool>,
    #[serde(default)]
    shm_size: Option<Scalar>,
    #[serde(default)]
    extra_hosts: Option<MapOrList>,
    #[serde(default)]
    secrets: Option<Vec<SecretRef>>,
    /// SSH agents: `default`, or `ID=SOCKET`/`{ID: SOCKET}`.
    #[serde(default)]
    ssh: Option<MapOrList>,
}

impl<'de> Deserialize<'de> for Build {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Build;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a context path or a map of build settings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Build, E> {
                Ok(Build(BuildMap {
                    context: Some(v.to_string()),
                    ..BuildMap::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Build, A::Error> {
                BuildMap::deserialize(de::value::MapAccessDeserializer::new(map)).map(Build)
            }
        }
        d.deserialize_any(V)
    }
}

/// A string-ish YAML scalar (`1`, `true`, `x`); `null` is `None`.
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.into())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Compose's two spellings of a mapping: `{K: V}` or `["K=V", "K"]`. A key without a value
/// (`K`, or `K:` with null) is `None`.
struct MapOrList(Vec<(String, Option<String>)>);

impl<'de> Deserialize<'de> for MapOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MapOrList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map or a list of KEY=VALUE strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MapOrList, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Scalar>()? {
                    out.push((k, v.0));
                }
                Ok(MapOrList(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MapOrList, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    out.push(match item.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (item, None),
                    });
                }
                Ok(MapOrList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads the compose file `path` (its text `text`); `env` looks a variable up in the
/// process environment.
pub fn read(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Definition, Vec<Note>), BakeError> {
    let syntax = |e: serde_yaml_ng::Error| BakeError::Syntax {
        path: path.to_path_buf(),
        line: e.location().map(|l| l.line()),
        message: without_location(&e.to_string()),
    };
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(syntax)?;
    let (services, secrets) = match &doc {
        serde_yaml_ng::Value::Mapping(m) if m.contains_key("services") => {
            let file = serde_yaml_ng::from_str::<ComposeFile>(text).map_err(syntax)?;
            (file.services, file.secrets)
        }
        serde_yaml_ng::Value::Mapping(m) if is_version_one(m) => (
            serde_yaml_ng::from_str::<IndexMap<String, Service>>(text).map_err(syntax)?,
            IndexMap::new(),
        ),
        _ => {
            return Err(BakeError::NoServices {
                path: path.to_path_buf(),
            })
        }
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let dotenv = read_dotenv(&dir.join(".env"))?;
    let lookup = |name: &str| env(name).or_else(|| dotenv.get(name).cloned());
    let mut def = Definition::default();
    let mut notes = Vec::new();
    let mut default = Vec::new();
    for (name, service) in services {
        let Some(Build(build)) = service.build else {
            continue; // an image only: nothing to build
        };
        if service.other.contains_key("x-bake") {
            // Its tags, platforms and cache settings would change the build: never ignored.
            return Err(BakeError::Invalid {
                path: path.to_path_buf(),
                line: line_of(text, "x-bake"),
                what: format!("service {name:?}: x-bake"),
                message: "the x-bake extension is not supported yet".into(),
            });
        }
        for key in service.other.keys() {
            if !key.starts_with("x-") {
                notes.push(Note::RuntimeKey {
                    file: path.to_path_buf(),
                    service: name.clone(),
                    key: key.clone(),
                });
            }
        }
        let at = |what: &str, e: crate::interp::InterpError| BakeError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, &name),
            what: format!("service {name:?}: {what}"),
            message: e.to_string(),
        };
        let s = |what: &str, v: Option<String>| -> Result<Option<String>, BakeError> {
            v.map(|v| interpolate(&v, &lookup).map_err(|e| at(what, e)))
                .transpose()
        };
        let list = |what: &str, v: Option<Vec<String>>| -> Result<Option<Vec<String>>, BakeError> {
            v.map(|v| {
                v.into_iter()
                    .map(|x| interpolate(&x, &lookup).map_err(|e| at(what, e)))
                    .collect()
            })
            .transpose()
        };
        // A key without a value takes the environment's (and is left out without one).
        let map = |what: &str,
                   v: Option<MapOrList>|
         -> Result<Option<BTreeMap<String, String>>, BakeError> {
            v.map(|MapOrList(entries)| {
                let mut out = BTreeMap::new();
                for (k, v) in entries {
                    let v = match v {
                        Some(v) => Some(interpolate(&v, &lookup).map_err(|e| at(what, e))?),
                        None => lookup(&k),
                    };
                    if let Some(v) = v {
                        out.insert(k, v);
                    }
                }
                Ok(out)
            })
            .transpose()
        };
        let context = s("build.context", build.context)?.unwrap_or_else(|| ".".into());
        let mut tags = Vec::new();
        if let Some(image) = s("image", service.image)? {
            tags.push(image);
        }
        tags.extend(list("build.tags", build.tags)?.unwrap_or_default());
        let platforms = match list("build.platforms", build.platforms)? {
            Some(p) => Some(p),
            None => s("platform", service.platform)?.map(|p| vec![p]),
        };
        let extra_hosts = map("build.extra_hosts", build.extra_hosts)?
            .map(|m| m.into_iter().map(|(h, ip)| format!("{h}={ip}")).collect());
        // `--secret id=…,src=FILE|env=VAR` for each secret the build names.
        let mut secret = Vec::new();
        for r in build.secrets.into_iter().flatten() {
            let invalid = |message: String| BakeError::Invalid {
                path: path.to_path_buf(),
                line: line_of(text, &name),
                what: format!("service {name:?}: build.secrets: {:?}", r.source),
                message,
            };
            let top = secrets
                .get(&r.source)
                .ok_or_else(|| invalid("not a top-level secret of this file".into()))?;
            let id = r.target.as_deref().unwrap_or(&r.source);
            secret.push(match (&top.file, &top.environment) {
                (Some(file), _) => format!("id={id},src={}", relative_to(dir, file)),
                (None, Some(var)) => format!("id={id},env={var}"),
                (None, None) => return Err(invalid(
                    "has neither file nor environment (external secrets are not known to a build)"
                        .into(),
                )),
            });
        }
        let ssh = build.ssh.map(|MapOrList(entries)| {
            entries
                .into_iter()
                .map(|(id, socket)| match socket {
                    Some(socket) => format!("{id}={socket}"),
                    None => id,
                })
                .collect()
        });
        let target = Target {
            secret: (!secret.is_empty()).then_some(secret),
            ssh,
            context: Some(relative_to(dir, &context)),
            dockerfile: s("build.dockerfile", build.dockerfile)?,
            dockerfile_inline: s("build.dockerfile_inline", build.dockerfile_inline)?,
            args: map("build.args", build.args)?,
            labels: map("build.labels", build.labels)?,
            tags: (!tags.is_empty()).then_some(tags),
            cache_from: list("build.cache_from", build.cache_from)?,
            cache_to: list("build.cache_to", build.cache_to)?,
            // Directories are relative to the compose file, as the context is.
            contexts: map("build.additional_contexts", build.additional_contexts)?.map(|m| {
                m.into_iter()
                    .map(|(k, v)| {
                        let v = if v.contains(':') {
                            v
                        } else {
                            relative_to(dir, &v)
                        };
                        (k, v)
                    })
                    .collect()
            }),
            target: s("build.target", build.target)?,
            platforms,
            network: s("build.network", build.network)?,
            no_cache: build.no_cache,
            pull: build.pull,
            shm_size: s("build.shm_size", build.shm_size.and_then(|x| x.0))?,
            extra_hosts,
            ..Target::default()
        };
        let target_name = name.replace('.', "_");
        default.push(target_name.clone());
        def.targets.insert(target_name, target);
    }
    def.groups
        .insert("default".into(), Group { targets: default });
    Ok((def, notes))
}

/// Version 1: no `services:`, and the top-level entries are services (maps, at least one with
/// `build:` or `image:`).
fn is_version_one(m: &serde_yaml_ng::Mapping) -> bool {
    let service = |v: &serde_yaml_ng::Value| {
        v.as_mapping()
            .is_some_and(|s| s.contains_key("build") || s.contains_key("image"))
    };
    !m.is_empty() && m.values().all(|v| v.is_mapping()) && m.values().any(service)
}

/// A path in the compose file, relative to its directory, as a path relative to where bake
/// runs. Absolute paths and URLs stay as they are.
fn relative_to(dir: &Path, context: &str) -> String {
    if dir.as_os_str().is_empty() || context.contains("://") || Path::new(context).is_absolute() {
        return context.to_string();
    }
    let mut context = context;
    while let Some(rest) = context.strip_prefix("./") {
        context = rest.trim_start_matches('/');
    }
    let joined: PathBuf = dir.join(context);
    let s = joined.to_string_lossy();
    s.strip_suffix("/.").unwrap_or(&s).to_string()
}

/// The `.env` file's `KEY=VALUE` lines (comments, blank lines and `export ` skipped; one pair
/// of surrounding quotes removed). No file: nothing.
fn read_dotenv(path: &Path) -> Result<BTreeMap<String, String>, BakeError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(BakeError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(BakeError::Syntax {
                path: path.to_path_buf(),
                line: Some(i + 1),
                message: format!("expected KEY=VALUE, found {line:?}"),
            });
        };
        let v = v.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| v.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(v);
        out.insert(k.trim().to_string(), unquoted.to_string());
    }
    Ok(out)
}

/// The 1-based line where the service `name` is defined (its key at the start of a line).
fn line_of(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.strip_prefix(name)
                .or_else(|| t.strip_prefix(&format!("\"{name}\"")))
                .is_some_and(|r| r.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TAG").then(|| "7".to_string())
    }

    fn read_str(text: &str) -> Result<(Definition, Vec<Note>), BakeError> {
        read(Path::new("compose.yaml"), text, &env)
    }

    #[test]
    fn services_with_build_become_targets() {
        let (def, notes) = read_str(
            "services:\n  web:\n    build:\n      context: ./web\n      dockerfile: Dockerfile.dev\n      args: [A=1, TAG]\n      target: prod\n      cache_from: [type=local,src=c]\n    image: web:${TAG}\n    ports: ['80:80']\n  db:\n    image: postgres\n  api.v2:\n    build: api\n",
        )
        .unwrap();
        assert_eq!(def.groups["default"].targets, vec!["web", "api_v2"]);
        let web = &def.targets["web"];
        assert_eq!(web.context.as_deref(), Some("./web"));
        assert_eq!(web.dockerfile.as_deref(), Some("Dockerfile.dev"));
        assert_eq!(web.tags, Some(vec!["web:7".to_string()]));
        assert_eq!(web.target.as_deref(), Some("prod"));
        let args = web.args.as_ref().unwrap();
        assert_eq!(args["A"], "1");
        assert_eq!(args["TAG"], "7");
        assert_eq!(def.targets["api_v2"].context.as_deref(), Some("api"));
        assert_eq!(
            notes,
            vec![Note::RuntimeKey {
                file: "compose.yaml".into(),
                service: "web".into(),
                key: "ports".into()
            }]
        );
    }

    #[test]
    fn the_dot_env_file_beside_the_compose_file_fills_variables() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "# comment\nexport REGISTRY=reg.example\nTAG=\"from-dotenv\"\n\nCTX=app\n",
        )
        .unwrap();
        let path = dir.path().join("compose.yaml");
        let text = "services:\n  web:\n    build: ${CTX}\n    image: ${REGISTRY}/web:${TAG}\n";
        // The environment wins over the file.
        let (def, _) = read(&path, text, &env).unwrap();
        let web = &def.targets["web"];
        assert_eq!(web.tags, Some(vec!["reg.example/web:7".to_string()]));
        // Relative to the compose file's directory.
        assert_eq!(
            web.context.as_deref(),
            Some(dir.path().join("app").to_str().unwrap())
        );
        let (def, _) = read(&path, text, &|_| None).unwrap();
        assert_eq!(
            def.targets["web"].tags,
            Some(vec!["reg.example/web:from-dotenv".to_string()])
        );
        std::fs::write(dir.path().join(".env"), "not a pair\n").unwrap();
        let e = read(&path, text, &env).unwrap_err();
        assert!(
            e.to_string()
                .ends_with(".env:1: expected KEY=VALUE, found \"not a pair\""),
            "{e}"
        );
    }

    #[test]
    fn build_secrets_and_ssh() {
        let (def, _) = read(
            Path::new("ci/compose.yaml"),
            "services:\n  web:\n    build:\n      context: .\n      secrets:\n        - npmrc\n        - source: token\n          target: api_token\n      ssh: [default, key=/run/agent.sock]\n\
             secrets:\n  npmrc:\n    file: ./npmrc\n  token:\n    environment: API_TOKEN\n",
            &env,
        )
        .unwrap();
        let web = &def.targets["web"];
        assert_eq!(
            web.secret,
            Some(vec![
                "id=npmrc,src=ci/npmrc".to_string(),
                "id=api_token,env=API_TOKEN".to_string()
            ])
        );
        assert_eq!(
            web.ssh,
            Some(vec![
                "default".to_string(),
                "key=/run/agent.sock".to_string()
            ])
        );
        let e =
            read_str("services:\n  web:\n    build:\n      context: .\n      secrets: [nope]\n")
                .unwrap_err();
        assert!(e.to_string().contains("build.secrets: \"nope\""), "{e}");
    }

    #[test]
    fn version_one_has_services_at_the_top_level() {
        let (def, notes) = read_str(
            "identidock:\n  build: .\n  environment: {ENV: PROD}\nredis:\n  image: redis\n",
        )
        .unwrap();
        assert_eq!(def.groups["default"].targets, vec!["identidock"]);
        assert_eq!(def.targets["identidock"].context.as_deref(), Some("."));
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn errors_have_the_line() {
        let e = read_str("services:\n  web:\n    build:\n      contxt: .\n").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("compose.yaml:4: "), "{text}");
        assert!(text.contains("contxt"), "{text}");
        let e = read_str("services:\n  web: [\n").unwrap_err();
        assert!(e.to_string().starts_with("compose.yaml:"), "{e}");
        let e = read_str("services:\n  web:\n    build: .\n    x-bake:\n      tags: [a]\n")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("compose.yaml:4: service \"web\": x-bake"),
            "{e}"
        );
        let e = read_str("networks: {}\n").unwrap_err();
        assert!(matches!(e, BakeError::NoServices { .. }), "{e}");
    }
}
