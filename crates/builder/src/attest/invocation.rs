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
    let (locals, config_source_uri) = match &config.context {
        ContextSpec::Dir(_) => (vec!["context".into(), "dockerfile".into()], None),
        ContextSpec::Empty | ContextSpec::Stdin => (vec!["dockerfile".into()], None),
        ContextSpec::Git { url, .. } | ContextSpec::Url(url) => (Vec::new(), Some(url.clone())),
    };
    let mut materials: Vec<Material> = Vec::new();
    for v in &reachable {
        let Op::Image(op) = &record.graph.vertices[v.index()].op else {
            continue;
        };
        let found = record
            .resolved
            .iter()
            .find(|r| r.reference == op.reference && r.platform == op.platform);
        if let Some(r) = found {
            let m = Material {
                uri: purl::image(&r.reference, Some(&r.platform)),
                sha256: r.manifest_digest.hex(),
            };
            if !materials.contains(&m) {
                materials.push(m);
            }
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
        started: record.started,
        finished: now,
        invocation_id: invocation_id.to_string(),
        reproducible: spec.reproducible,
        steps,
        dockerfile: record.dockerfile.to_vec(),
    }
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
                url: "https://example.com/r.git#main".into(),
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
            Some("https://example.com/r.git#main")
        );
        assert!(inv.locals.is_empty());
        assert_eq!(inv.args["build-arg:V"], "1");
        assert!(inv.steps.is_empty(), "min mode has no steps");
        spec.mode = Mode::Max;
        let inv = invocation(&config, &record, &spec, VertexId(0), 20, "id");
        assert_eq!(inv.steps.len(), 1, "only the reachable vertex");
        assert_eq!(inv.steps[0].id, "step0");
    }
}
