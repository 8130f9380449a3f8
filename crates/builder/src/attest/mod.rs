//! The attestations of a build (`--provenance`, `--sbom`, `--attest`), made at export for each
//! platform's committed image: an SPDX SBOM of the image's packages ([`crate::sbom`]) and SLSA
//! provenance (v0.2, or v1) of the build, as in-toto statements whose subjects are the image's names
//! (`pkg:docker/…` purls with the platform) at its manifest digest, stored as an attestation
//! manifest (`rbuild_oci::attest`) that joins the image in its index. The formats are
//! `rbuild-oci`'s; what goes into them (the build's inputs, steps and base images) is
//! gathered here.

pub mod spec;

use std::collections::BTreeMap;
use std::path::PathBuf;

use rbuild_cache::{MergedView, Store};
use rbuild_graph::{Graph, Op, VertexId};
use rbuild_oci::attest::provenance::{self, BuildStep, Invocation, Material, Mode};
use rbuild_oci::attest::{purl, spdx, Statement, Subject};
use rbuild_oci::images::StoredImage;
use rbuild_oci::manifest::Descriptor;
use rbuild_oci::source::{PullError, RegistrySource};
use rbuild_oci::OciError;
use rbuild_solver::ports::ResolvedImage;
use rbuild_types::{Hasher, ImageRef, Platform};

pub use spec::{AttestError, Attestations, ProvenanceSpec};

use crate::config::{BuildConfig, ContextSpec};
use crate::sbom::SbomError;

/// Why the attestations of a platform's image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AttestFailure {
    #[error("scanning the {platform} image for --sbom: {source}")]
    Sbom {
        platform: Platform,
        #[source]
        source: Box<SbomError>,
    },
    #[error("downloading the {platform} image's layers for --sbom: {source}")]
    Lazy {
        platform: Platform,
        #[source]
        source: Box<PullError>,
    },
    #[error("storing the {platform} image's attestations: {source}")]
    Store {
        platform: Platform,
        #[source]
        source: Box<OciError>,
    },
}

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

/// One platform's image to attest.
pub(crate) struct Subjected<'a> {
    pub platform: &'a Platform,
    pub layers: &'a [rbuild_cache::SnapshotId],
    pub image: StoredImage,
}

/// One predicate of a platform's attestations, and the file a `type=local` output writes its
/// statement to (BuildKit's attestation paths).
pub(crate) struct Predicate {
    pub predicate_type: &'static str,
    pub predicate: serde_json::Value,
    pub file_name: &'static str,
}

/// What [`attest`] made: per image, its attestation manifest's index entry and the
/// predicates stated there.
#[derive(Default)]
pub(crate) struct Attested {
    pub entries: Vec<Descriptor>,
    pub predicates: Vec<Vec<Predicate>>,
}

impl Attested {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Makes and stores the attestation manifest of each image in `images` (platform `i`'s
/// target is `record.targets[i]`), named `names`; none when nothing is asked.
pub(crate) fn attest(
    store: &Store,
    source: &RegistrySource,
    config: &BuildConfig,
    record: &BuildRecord<'_>,
    images: &[Subjected<'_>],
    names: &[String],
) -> Result<Attested, AttestFailure> {
    let asked = &config.attestations;
    let mut made = Attested::default();
    if asked.is_empty() {
        return Ok(made);
    }
    let now = rbuild_oci::time::now_unix();
    let invocation_id = invocation_id(record.started);
    for (i, image) in images.iter().enumerate() {
        let platform = image.platform;
        let subjects: Vec<Subject> = names
            .iter()
            .filter_map(|n| ImageRef::parse(n).ok())
            .map(|r| {
                Subject::new(
                    purl::image(&r, Some(platform)),
                    &image.image.manifest_digest,
                )
            })
            .collect();
        let mut predicates = Vec::new();
        if asked.sbom {
            let packages = scan(store, source, platform, image.layers)?;
            let name = names.first().map(String::as_str).unwrap_or_default();
            let created = config.source_date_epoch.unwrap_or(now);
            let creator = format!("rbuild-{}", env!("CARGO_PKG_VERSION"));
            predicates.push(Predicate {
                predicate_type: spdx::PREDICATE_TYPE,
                predicate: spdx::document(name, &packages, created, &creator),
                file_name: "sbom.spdx.json",
            });
        }
        if let Some(p) = &asked.provenance {
            let target = record
                .targets
                .get(i)
                .copied()
                .unwrap_or(record.graph.target);
            let inv = invocation(config, record, p, target, now, &invocation_id);
            predicates.push(Predicate {
                predicate_type: provenance::predicate_type(p.version),
                predicate: provenance::predicate(&inv),
                file_name: "provenance.json",
            });
        }
        let statements: Vec<Statement> = predicates
            .iter()
            .map(|p| Statement::new(p.predicate_type, subjects.clone(), p.predicate.clone()))
            .collect();
        let entry = rbuild_oci::attest::commit_attestations(
            store,
            &image.image.manifest_digest,
            &statements,
        )
        .map_err(|source| AttestFailure::Store {
            platform: platform.clone(),
            source: Box::new(source),
        })?;
        made.entries.push(entry);
        made.predicates.push(predicates);
    }
    Ok(made)
}

/// Why the statements of a `type=local` output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LocalStatementsError {
    #[error("reading the image's files: {0}")]
    View(#[source] rbuild_cache::CacheError),
    #[error("reading {path} of the image: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] OciError),
}

/// Writes `predicates` into the root filesystem output `dir` of the image of `layers`, as
/// BuildKit's local exporter does: one in-toto statement per predicate (`provenance.json`,
/// `sbom.spdx.json`; indented JSON, mode 0600, modified at `mtime`) whose subjects are every
/// regular file of the image, by path and sha256.
pub(crate) fn write_local(
    store: &Store,
    dir: &std::path::Path,
    layers: &[rbuild_cache::SnapshotId],
    predicates: &[Predicate],
    mtime: u64,
) -> Result<(), LocalStatementsError> {
    let paths: Vec<PathBuf> = layers
        .iter()
        .map(|l| {
            store
                .snapshots()
                .path(l)
                .ok_or(OciError::MissingSnapshot(l.0))
        })
        .collect::<Result<_, _>>()?;
    let view = MergedView::new(paths);
    let mut subjects = Vec::new();
    for entry in view
        .walk(std::path::Path::new("/"))
        .map_err(LocalStatementsError::View)?
    {
        if !entry.metadata.is_file() {
            continue;
        }
        let mut file =
            std::fs::File::open(&entry.host_path).map_err(|source| LocalStatementsError::Read {
                path: entry.path.clone(),
                source,
            })?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf).map_err(|source| {
                LocalStatementsError::Read {
                    path: entry.path.clone(),
                    source,
                }
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let name = entry.path.to_string_lossy();
        subjects.push(Subject::new(
            name.trim_start_matches('/').to_string(),
            &hasher.finish(),
        ));
    }
    let files: Vec<(&str, Vec<u8>)> = predicates
        .iter()
        .map(|p| {
            let statement = Statement::new(p.predicate_type, subjects.clone(), p.predicate.clone());
            (p.file_name, statement.to_json_pretty())
        })
        .collect();
    rbuild_oci::export::write_statement_files(dir, &files, mtime)?;
    Ok(())
}

/// The packages of the image of `layers` (lazy layers downloaded and unpacked first).
fn scan(
    store: &Store,
    source: &RegistrySource,
    platform: &Platform,
    layers: &[rbuild_cache::SnapshotId],
) -> Result<Vec<spdx::Package>, AttestFailure> {
    source
        .unpack_layers(layers)
        .map_err(|e| AttestFailure::Lazy {
            platform: platform.clone(),
            source: Box::new(e),
        })?;
    let mut paths: Vec<PathBuf> = Vec::with_capacity(layers.len());
    for l in layers {
        let path = store
            .snapshots()
            .path(l)
            .ok_or_else(|| AttestFailure::Store {
                platform: platform.clone(),
                source: Box::new(OciError::MissingSnapshot(l.0)),
            })?;
        paths.push(path);
    }
    crate::sbom::scan(&MergedView::new(paths)).map_err(|source| AttestFailure::Sbom {
        platform: platform.clone(),
        source: Box::new(source),
    })
}

/// What the provenance of the image of `target` records.
fn invocation(
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
fn invocation_id(started: u64) -> String {
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
