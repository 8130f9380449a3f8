//! SLSA provenance as BuildKit writes it (`solver/llbsolver/provenance`): v0.2
//! (`https://slsa.dev/provenance/v0.2`, its default, converted by `ConvertToSLSA02`) or v1
//! (`version=v1`: the same facts as `buildDefinition` and `runDetails`). In v0.2: the builder, the
//! build type `https://mobyproject.org/buildkit@v1`, the invocation (the Dockerfile as config
//! source entry point; frontend, args and locals as parameters; the platform as environment),
//! the materials (base images as `pkg:docker/…` purls with their manifest digests) and the
//! metadata (start and finish times, completeness, reproducible).
//!
//! `mode=min` leaves out what BuildKit's `scrubMinRequest` scrubs: `build-arg:` and `label:`
//! args (then `completeness.parameters` is false), secret and SSH ids, and the build
//! definition. `mode=max` keeps them and adds `buildConfig.llbDefinition` (rbuild's steps:
//! each vertex's op, as the graph serialises it, and its inputs) and the Dockerfile itself
//! under the BuildKit metadata's `source`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

/// The predicate type of SLSA provenance v0.2.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v0.2";
/// BuildKit's build type for v0.2 predicates.
pub const BUILD_TYPE: &str = "https://mobyproject.org/buildkit@v1";
/// The predicate type of SLSA provenance v1 (`version=v1`).
pub const PREDICATE_TYPE_V1: &str = "https://slsa.dev/provenance/v1";
/// BuildKit's build type for v1 predicates.
pub const BUILD_TYPE_V1: &str =
    "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md";
/// The frontend parameter BuildKit records for Dockerfile builds.
pub const FRONTEND: &str = "dockerfile.v0";

/// How much the provenance tells (`mode=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Only what cannot leak build secrets or inputs (buildx's default).
    #[default]
    Min,
    /// Everything, including build args and the build definition.
    Max,
}

/// Which SLSA provenance the predicate is (`version=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    /// `https://slsa.dev/provenance/v0.2`, BuildKit's default.
    #[default]
    V02,
    /// `https://slsa.dev/provenance/v1`.
    V1,
}

/// A base image (or other source) the build read, with its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    /// A purl (`pkg:docker/busybox@latest?platform=linux%2Famd64`) or URL.
    pub uri: String,
    /// Its sha256, hex.
    pub sha256: String,
}

/// One step of the build definition (`mode=max`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BuildStep {
    /// `step0`, `step1`, … in the graph's order.
    pub id: String,
    /// The step's op as the build graph serialises it.
    pub op: Value,
    /// The ids of its inputs (`step0:0`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
}

/// What one platform's build was, in the terms of the predicate.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub mode: Mode,
    pub version: Version,
    /// `builder-id=` (empty when not given, as BuildKit's).
    pub builder_id: String,
    /// The Dockerfile's name (the config source's entry point).
    pub entry_point: String,
    /// Where the build definition came from when not local (a git or URL context).
    pub config_source_uri: Option<String>,
    /// The frontend's options as BuildKit names them: `build-arg:NAME`, `label:NAME`,
    /// `target`, … (host-specific ones such as `platform` are not recorded).
    pub args: BTreeMap<String, String>,
    /// The local sources the build read (`context`, `dockerfile`, named contexts).
    pub locals: Vec<String>,
    /// Secret and SSH ids the build was given.
    pub secrets: Vec<String>,
    pub ssh: Vec<String>,
    /// The platform the build ran for (`linux/amd64`).
    pub platform: String,
    pub materials: Vec<Material>,
    /// Whether `materials` is every source the build read (no local context, no download
    /// left out).
    pub materials_complete: bool,
    /// Unix times, seconds.
    pub started: u64,
    pub finished: u64,
    pub invocation_id: String,
    /// `reproducible=true`.
    pub reproducible: bool,
    /// The build definition (only written with `mode=max`).
    pub steps: Vec<BuildStep>,
    /// The Dockerfile's bytes (only written with `mode=max`).
    pub dockerfile: Vec<u8>,
}

/// The predicate type of `inv`'s version.
pub fn predicate_type(version: Version) -> &'static str {
    match version {
        Version::V02 => PREDICATE_TYPE,
        Version::V1 => PREDICATE_TYPE_V1,
    }
}

/// The predicate (the `predicate` of the in-toto statement), in `inv.version`'s form.
pub fn predicate(inv: &Invocation) -> Value {
    let parts = Parts::of(inv);
    match inv.version {
        Version::V02 => v02(inv, parts),
        Version::V1 => v1(inv, parts),
    }
}

/// What both versions say, in their shared shapes.
struct Parts {
    /// The request: frontend, args, secrets, ssh, locals (BuildKit's `Parameters`).
    parameters: Value,
    /// Whether `parameters` is the whole request (min scrubs build args and labels).
    complete_parameters: bool,
    /// `[{uri, digest}]`.
    materials: Value,
    /// BuildKit's own metadata (`source` with mode=max).
    buildkit_metadata: Value,
    /// `{llbDefinition}` with mode=max.
    build_config: Option<Value>,
}

impl Parts {
    fn of(inv: &Invocation) -> Parts {
        let max = inv.mode == Mode::Max;
        let mut args = inv.args.clone();
        let mut complete_parameters = true;
        if !max {
            let before = args.len();
            args.retain(|k, _| !k.starts_with("build-arg:") && !k.starts_with("label:"));
            complete_parameters = args.len() == before;
        }
        let mut parameters = serde_json::Map::new();
        parameters.insert("frontend".into(), FRONTEND.into());
        if !args.is_empty() {
            parameters.insert(
                "args".into(),
                serde_json::to_value(&args).unwrap_or_default(),
            );
        }
        if max {
            let ids = |ids: &[String]| -> Value {
                ids.iter()
                    .map(|id| serde_json::json!({ "id": id }))
                    .collect()
            };
            if !inv.secrets.is_empty() {
                parameters.insert("secrets".into(), ids(&inv.secrets));
            }
            if !inv.ssh.is_empty() {
                parameters.insert("ssh".into(), ids(&inv.ssh));
            }
        }
        if !inv.locals.is_empty() {
            let locals: Value = inv
                .locals
                .iter()
                .map(|n| serde_json::json!({ "name": n }))
                .collect();
            parameters.insert("locals".into(), locals);
        }
        let materials: Value = inv
            .materials
            .iter()
            .map(|m| serde_json::json!({ "uri": m.uri, "digest": { "sha256": m.sha256 } }))
            .collect();
        let mut buildkit_metadata = serde_json::Map::new();
        if max && !inv.dockerfile.is_empty() {
            buildkit_metadata.insert(
                "source".into(),
                serde_json::json!({ "infos": [{
                    "filename": inv.entry_point,
                    "language": "Dockerfile",
                    "data": base64::engine::general_purpose::STANDARD.encode(&inv.dockerfile),
                }]}),
            );
        }
        let build_config = (max && !inv.steps.is_empty())
            .then(|| serde_json::json!({ "llbDefinition": inv.steps }));
        Parts {
            parameters: Value::Object(parameters),
            complete_parameters,
            materials,
            buildkit_metadata: Value::Object(buildkit_metadata),
            build_config,
        }
    }
}

/// SLSA v0.2, as BuildKit's `ConvertToSLSA02` writes it.
fn v02(inv: &Invocation, parts: Parts) -> Value {
    let mut metadata = serde_json::json!({
        "buildStartedOn": crate::time::rfc3339(inv.started),
        "buildFinishedOn": crate::time::rfc3339(inv.finished),
        "completeness": {
            "parameters": parts.complete_parameters,
            "environment": true,
            "materials": inv.materials_complete,
        },
        "reproducible": inv.reproducible,
        "https://mobyproject.org/buildkit@v1#metadata": parts.buildkit_metadata,
    });
    if !inv.invocation_id.is_empty() {
        metadata["buildInvocationID"] = inv.invocation_id.clone().into();
    }
    let mut config_source = serde_json::json!({ "entryPoint": inv.entry_point });
    if let Some(uri) = &inv.config_source_uri {
        config_source["uri"] = uri.clone().into();
    }
    let mut predicate = serde_json::json!({
        "builder": { "id": inv.builder_id },
        "buildType": BUILD_TYPE,
        "materials": parts.materials,
        "invocation": {
            "configSource": config_source,
            "parameters": parts.parameters,
            "environment": { "platform": inv.platform },
        },
        "metadata": metadata,
    });
    if let Some(build_config) = parts.build_config {
        predicate["buildConfig"] = build_config;
    }
    predicate
}

/// SLSA v1 (`version=v1`), as BuildKit's `ProvenancePredicateSLSA1`: the build definition
/// (external parameters: config source and request; internal: build config and builder
/// platform; resolved dependencies) and the run details (builder, metadata).
fn v1(inv: &Invocation, parts: Parts) -> Value {
    let mut config_source = serde_json::json!({ "path": inv.entry_point });
    if let Some(uri) = &inv.config_source_uri {
        config_source["uri"] = uri.clone().into();
    }
    let mut internal = serde_json::json!({ "builderPlatform": inv.platform });
    if let Some(build_config) = parts.build_config {
        internal["buildConfig"] = build_config;
    }
    let mut metadata = serde_json::json!({
        "startedOn": crate::time::rfc3339(inv.started),
        "finishedOn": crate::time::rfc3339(inv.finished),
        "buildkit_metadata": parts.buildkit_metadata,
        "buildkit_completeness": {
            "request": parts.complete_parameters,
            "resolvedDependencies": inv.materials_complete,
        },
    });
    if !inv.invocation_id.is_empty() {
        metadata["invocationID"] = inv.invocation_id.clone().into();
    }
    if inv.reproducible {
        metadata["buildkit_reproducible"] = true.into();
    }
    serde_json::json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE_V1,
            "externalParameters": {
                "configSource": config_source,
                "request": parts.parameters,
            },
            "internalParameters": internal,
            "resolvedDependencies": parts.materials,
        },
        "runDetails": {
            "builder": { "id": inv.builder_id },
            "metadata": metadata,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(mode: Mode) -> Invocation {
        Invocation {
            mode,
            version: Version::V02,
            builder_id: String::new(),
            entry_point: "Dockerfile".into(),
            config_source_uri: None,
            args: BTreeMap::from([
                ("build-arg:TOKEN".to_string(), "x".to_string()),
                ("target".to_string(), "final".to_string()),
            ]),
            locals: vec!["context".into(), "dockerfile".into()],
            secrets: vec!["npmrc".into()],
            ssh: vec![],
            platform: "linux/amd64".into(),
            materials: vec![Material {
                uri: "pkg:docker/busybox@latest?platform=linux%2Famd64".into(),
                sha256: "ab".repeat(32),
            }],
            materials_complete: false,
            started: 0,
            finished: 61,
            invocation_id: "id".into(),
            reproducible: false,
            steps: vec![BuildStep {
                id: "step0".into(),
                op: serde_json::json!({"exec": {"args": ["true"]}}),
                inputs: vec![],
            }],
            dockerfile: b"FROM busybox\n".to_vec(),
        }
    }

    #[test]
    fn min_scrubs_build_args_secrets_and_the_definition() {
        let p = predicate(&invocation(Mode::Min));
        let params = &p["invocation"]["parameters"];
        assert_eq!(params["frontend"], "dockerfile.v0");
        assert_eq!(params["args"], serde_json::json!({"target": "final"}));
        assert!(params.get("secrets").is_none());
        assert_eq!(p["metadata"]["completeness"]["parameters"], false);
        assert_eq!(p["metadata"]["completeness"]["materials"], false);
        assert!(p.get("buildConfig").is_none());
        assert_eq!(p["metadata"]["buildFinishedOn"], "1970-01-01T00:01:01Z");
        assert_eq!(p["buildType"], BUILD_TYPE);
        assert_eq!(p["invocation"]["configSource"]["entryPoint"], "Dockerfile");
    }

    #[test]
    fn max_keeps_args_secret_ids_and_adds_the_steps() {
        let p = predicate(&invocation(Mode::Max));
        let params = &p["invocation"]["parameters"];
        assert_eq!(params["args"]["build-arg:TOKEN"], "x");
        assert_eq!(params["secrets"], serde_json::json!([{"id": "npmrc"}]));
        assert_eq!(p["metadata"]["completeness"]["parameters"], true);
        assert_eq!(p["buildConfig"]["llbDefinition"][0]["id"], "step0");
        let source = &p["metadata"]["https://mobyproject.org/buildkit@v1#metadata"]["source"];
        assert_eq!(source["infos"][0]["data"], "RlJPTSBidXN5Ym94Cg==");
    }

    #[test]
    fn v1_has_the_same_facts_in_its_own_shape() {
        let mut inv = invocation(Mode::Max);
        inv.version = Version::V1;
        let p = predicate(&inv);
        let def = &p["buildDefinition"];
        assert_eq!(def["buildType"], BUILD_TYPE_V1);
        assert_eq!(
            def["externalParameters"]["configSource"]["path"],
            "Dockerfile"
        );
        assert_eq!(
            def["externalParameters"]["request"]["args"]["build-arg:TOKEN"],
            "x"
        );
        assert_eq!(def["internalParameters"]["builderPlatform"], "linux/amd64");
        assert_eq!(
            def["internalParameters"]["buildConfig"]["llbDefinition"][0]["id"],
            "step0"
        );
        assert_eq!(
            def["resolvedDependencies"][0]["digest"]["sha256"],
            "ab".repeat(32)
        );
        let meta = &p["runDetails"]["metadata"];
        assert_eq!(meta["invocationID"], "id");
        assert_eq!(meta["buildkit_completeness"]["request"], true);
        assert_eq!(
            predicate_type(Version::V1),
            "https://slsa.dev/provenance/v1"
        );
    }
}
