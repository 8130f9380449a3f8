//! What provenance records of a build: its request (build args, labels, target, locals,
//! secret and SSH ids), the base images each platform's target reaches (as materials, with
//! their manifest digests), and for `mode=max` the reachable steps of the build graph.

use std::collections::BTreeMap;

use rbuild_graph::{Graph, Op, VertexId};
use rbuild_oci::attest::provenance::{BuildStep, Invocation, Material, Mode};
use rbuild_oci::attest::purl;
use rbuild_solver::ports::ResolvedImage;
use rbuild_types::{Hasher, Platform};

use super::ProvenanceSpec;
use crate::config::{BuildConfig, ContextSpec};
use crate::named::NamedSpec;

/// What the build was, beyond its config: what provenance records.
pub(crate) struct BuildRecord<'a> {
    pub graph: &'a Graph,
    /// Each platform's target vertex, in the order of the platforms.
    pub targets: &'a [VertexId],
    /// Every base image resolved, with its manifest digest.
    pub resolved: &'a [ResolvedImage],
    /// The Dockerfile as named, and its bytes.
    pub dockerfile_name: &'a str,
    pub dockerfile: &'a [u8],
    /// When the build started (Unix seconds).
    pub started: u64,
}

/// What the provenance of the image of `target` records.
pub(crate) fn invocation(
    config: &BuildConfig,
    record: &BuildRecord<'_>,
    spec: &ProvenanceSpec,
    target: VertexId,
    now: u64,
    invocation_id: &str,
) -> Invocation {
    let reachable = reachable(record.graph, target);
    let mut args = BTreeMap::new();
    for (k, v) in &config.options.build_args {
        args.insert(format!("build-arg:{k}"), v.clone());
    }
    for (k, v) in &config.options.labels {
        args.insert(format!("label:{k}"), v.clone());
    }
    if let Some(t) = &config.options.target {
        args.insert("target".to_string(), t.clone());
    }
    if config.options.no_cache {
        args.insert("no-cache".to_string(), String::new());
    }
    let (mut locals, config_source_uri) = match &config.context {
        ContextSpec::Dir(_) => (vec!["context".into(), "dockerfile".into()], None),
        ContextSpec::Empty | ContextSpec::Stdin => (vec!["dockerfile".into()], None),
        ContextSpec::Git { url, .. } | ContextSpec::Url(url) => {
            (Vec::new(), Some(redact_credentials(url)))
        }
    };
    // Named contexts as buildx passes them (`context:NAME`; a directory is a local source of
    // that name, never its host path).
    for (key, spec) in &config.named_contexts {
        let value = match spec {
            NamedSpec::Dir(_) => {
                locals.push(key.clone());
                format!("local:{key}")
            }
            NamedSpec::Image(r) => format!("docker-image://{r}"),
            NamedSpec::OciLayout { .. } => format!("oci-layout://{key}"),
            NamedSpec::Git { url, .. } | NamedSpec::Url(url) => redact_credentials(url),
        };
        args.insert(format!("context:{key}"), value);
    }
    let mut materials: Vec<Material> = Vec::new();
    // Local sources (contexts) and downloads (ADD <url|git>) are not recorded as materials.
    let mut materials_complete = locals.is_empty();
    for v in &reachable {
        let op = match &record.graph.vertices[v.index()].op {
            Op::Image(op) => op,
            Op::Context { .. } | Op::Http(_) | Op::Git(_) => {
                materials_complete = false;
                continue;
            }
            Op::Scratch | Op::Exec(_) | Op::File(_) => continue,
        };
        let found = record
            .resolved
            .iter()
            .find(|r| r.reference == op.reference && r.platform == op.platform);
        match found {
            Some(r) => {
                let m = Material {
                    uri: purl::image(&r.reference, Some(&r.platform)),
                    sha256: r.manifest_digest.hex(),
                };
                if !materials.contains(&m) {
                    materials.push(m);
                }
            }
            None => materials_complete = false,
        }
    }
    let steps = match spec.mode {
        Mode::Min => Vec::new(),
        Mode::Max => steps(record.graph, &reachable),
    };
    Invocation {
        mode: spec.mode,
        version: spec.version,
        builder_id: spec.builder_id.clone(),
        entry_point: short_name(record.dockerfile_name).to_string(),
        config_source_uri,
        args,
        locals,
        secrets: config
            .mounts
            .secrets
            .iter()
            .map(|(id, _)| id.clone())
            .collect(),
        ssh: config.mounts.ssh.iter().map(|(id, _)| id.clone()).collect(),
        platform: Platform::host().to_string(),
        materials,
        materials_complete,
        started: record.started,
        finished: now,
        invocation_id: invocation_id.to_string(),
        reproducible: spec.reproducible,
        steps,
        dockerfile: record.dockerfile.to_vec(),
    }
}

/// `url` with its user name and password masked, as BuildKit's `urlutil.RedactCredentials`
/// (`https://xxxxx:xxxxx@host/…`); anything without credentials unchanged.
fn redact_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let masked = match userinfo.split_once(':') {
        Some((user, _)) if !user.is_empty() => "xxxxx:xxxxx".to_string(),
        Some((_, _)) => ":xxxxx".to_string(),
        None if !userinfo.is_empty() => "xxxxx".to_string(),
        None => String::new(),
    };
    format!("{scheme}://{masked}@{host}{tail}")
}

/// The vertices `target` depends on (itself included), in graph order.
fn reachable(graph: &Graph, target: VertexId) -> Vec<VertexId> {
    let mut seen = vec![false; graph.vertices.len()];
    let mut stack = vec![target];
    while let Some(v) = stack.pop() {
        let Some(s) = seen.get_mut(v.index()) else {
            continue;
        };
        if std::mem::replace(s, true) {
            continue;
        }
        stack.extend(graph.vertices[v.index()].inputs.iter().copied());
    }
    (0..graph.vertices.len())
        .filter(|&i| seen[i])
        .map(|i| VertexId(i as u32))
        .collect()
}

/// The build definition of `mode=max`: each reachable vertex's op and inputs, numbered.
fn steps(graph: &Graph, reachable: &[VertexId]) -> Vec<BuildStep> {
    let number: BTreeMap<VertexId, usize> =
        reachable.iter().enumerate().map(|(n, v)| (*v, n)).collect();
    reachable
        .iter()
        .enumerate()
        .map(|(n, v)| {
            let vertex = &graph.vertices[v.index()];
            BuildStep {
                id: format!("step{n}"),
                op: serde_json::to_value(&vertex.op).unwrap_or_default(),
                inputs: vertex
                    .inputs
                    .iter()
                    .filter_map(|i| number.get(i).map(|n| format!("step{n}:0")))
                    .collect(),
            }
        })
        .collect()
}

/// An id for this build (BuildKit's job id): unique per run.
pub(crate) fn invocation_id(started: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut h = Hasher::new();
    h.field(&started.to_le_bytes());
    h.field(&nanos.to_le_bytes());
    h.field(&std::process::id().to_le_bytes());
    h.finish().hex()[..25].to_string()
}

fn short_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbuild_graph::{ImageConfig, ImageOp, Vertex};
    use rbuild_types::{Digest, ImageRef};

    fn image(name: &str, platform: &Platform) -> Vertex {
        Vertex {
            op: Op::Image(ImageOp {
                reference: ImageRef::parse(name).unwrap(),
                platform: platform.clone(),
            }),
            inputs: vec![],
            name: format!("FROM {name}"),
            span: None,
            ignore_cache: false,
            origin: None,
        }
    }

    #[test]
    fn credentials_in_urls_are_masked_as_buildkit_masks_them() {
        assert_eq!(
            redact_credentials("https://user:tok@git.example/r.git#main"),
            "https://xxxxx:xxxxx@git.example/r.git#main"
        );
        assert_eq!(
            redact_credentials("https://tok@git.example/r.git"),
            "https://xxxxx@git.example/r.git"
        );
        assert_eq!(
            redact_credentials("https://git.example/a@b"),
            "https://git.example/a@b"
        );
        assert_eq!(
            redact_credentials("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
    }

    #[test]
    fn materials_are_the_base_images_the_target_reaches() {
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let graph = Graph {
            vertices: vec![image("busybox", &amd64), image("alpine:3", &amd64)],
            target: VertexId(0),
            image: ImageConfig::default(),
        };
        let resolved: Vec<ResolvedImage> = ["busybox", "alpine:3"]
            .iter()
            .map(|n| ResolvedImage {
                reference: ImageRef::parse(n).unwrap(),
                platform: amd64.clone(),
                manifest_digest: Digest::of(n.as_bytes()),
                config: ImageConfig::default(),
            })
            .collect();
        let record = BuildRecord {
            graph: &graph,
            targets: &[VertexId(0)],
            resolved: &resolved,
            dockerfile_name: "ctx/Dockerfile.app",
            dockerfile: b"FROM busybox\n",
            started: 10,
        };
        let mut config = BuildConfig::new(
            crate::config::DockerfileSpec::Default,
            ContextSpec::Git {
                url: "https://u:secret@example.com/r.git#main".into(),
                spec: rbuild_context::ContextSource::classify("https://example.com/r.git#main")
                    .map(|s| match s {
                        rbuild_context::ContextSource::Git(g) => g,
                        _ => unreachable!("a git URL"),
                    })
                    .unwrap(),
            },
            "/s".into(),
            rbuild_sandbox::detect_privileges(),
        );
        config
            .options
            .build_args
            .insert("V".to_string(), "1".to_string());
        config
            .named_contexts
            .insert("src".to_string(), NamedSpec::Dir("/home/me/src".into()));
        let mut spec = ProvenanceSpec::default();
        let inv = invocation(&config, &record, &spec, VertexId(0), 20, "id");
        assert_eq!(inv.materials.len(), 1);
        assert_eq!(
            inv.materials[0].uri,
            "pkg:docker/busybox@latest?platform=linux%2Famd64"
        );
        assert_eq!(inv.materials[0].sha256, Digest::of(b"busybox").hex());
        assert_eq!(inv.entry_point, "Dockerfile.app");
        assert_eq!(
            inv.config_source_uri.as_deref(),
            Some("https://xxxxx:xxxxx@example.com/r.git#main")
        );
        assert_eq!(inv.locals, ["src"]);
        assert_eq!(inv.args["context:src"], "local:src");
        assert_eq!(inv.args["build-arg:V"], "1");
        assert!(inv.steps.is_empty(), "min mode has no steps");
        assert!(
            !inv.materials_complete,
            "a named local context is no material"
        );
        spec.mode = Mode::Max;
        let inv = invocation(&config, &record, &spec, VertexId(0), 20, "id");
        assert_eq!(inv.steps.len(), 1, "only the reachable vertex");
        assert_eq!(inv.steps[0].id, "step0");
    }
}
