//! The attestations of a build (`--provenance`, `--sbom`, `--attest`), made at export for each
//! platform's committed image: an SPDX SBOM of the image's packages ([`crate::sbom`]) and SLSA
//! provenance (v0.2, or v1) of the build, as in-toto statements whose subjects are the image's
//! names (`pkg:docker/…` purls with the platform) at its manifest digest, stored as an
//! attestation manifest (`rbuild_oci::attest`) that joins the image in its index; for root
//! filesystem outputs, the same predicates about the output's files (`local`). The formats are
//! `rbuild-oci`'s; what goes into them (the build's inputs, steps and base images: see
//! `invocation`) is gathered here.

mod invocation;
mod local;
pub mod spec;

use std::path::PathBuf;

use rbuild_cache::{MergedView, Store};
use rbuild_oci::attest::provenance;
use rbuild_oci::attest::{purl, spdx, Statement, Subject};
use rbuild_oci::images::StoredImage;
use rbuild_oci::manifest::Descriptor;
use rbuild_oci::source::{PullError, RegistrySource};
use rbuild_oci::OciError;
use rbuild_types::{ImageRef, Platform};

pub(crate) use invocation::BuildRecord;
pub use local::LocalStatementsError;
pub(crate) use local::{statement_files, write_local};
pub use spec::{AttestError, Attestations, ProvenanceSpec};

use crate::config::BuildConfig;
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
    let invocation_id = invocation::invocation_id(record.started);
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
            let inv = invocation::invocation(config, record, p, target, now, &invocation_id);
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
