//! The attestation manifest: an OCI image manifest whose layers are in-toto statements
//! (`application/vnd.in-toto+json`, each annotated with its `in-toto.io/predicate-type`), whose
//! config is an image config of platform `unknown/unknown` listing the statements' digests as
//! diff_ids (BuildKit's `attestationsConfig`), and whose index entry carries platform
//! `unknown/unknown` and `vnd.docker.reference.type=attestation-manifest`,
//! `vnd.docker.reference.digest=<the image manifest it describes>` (BuildKit's
//! `commitAttestationsManifest`).

use std::collections::BTreeMap;

use rbuild_cache::Store;
use rbuild_types::{Digest, Platform};
use serde_json::json;

use super::statement::{Statement, IN_TOTO_MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION};
use crate::manifest::{Descriptor, ImageManifest, OCI_CONFIG, OCI_MANIFEST};
use crate::OciError;

/// The index annotation saying what kind of reference an entry is.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// The index annotation naming the manifest an attestation manifest describes.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// [`REFERENCE_TYPE`]'s value for an attestation manifest.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// The platform of an attestation manifest's index entry and config.
pub fn unknown_platform() -> Platform {
    Platform {
        os: "unknown".into(),
        architecture: "unknown".into(),
        variant: None,
    }
}

/// Whether index entry `d` is an attestation manifest.
pub fn is_attestation(d: &Descriptor) -> bool {
    d.annotations
        .as_ref()
        .and_then(|a| a.get(REFERENCE_TYPE))
        .is_some_and(|t| t == ATTESTATION_MANIFEST)
}

/// The manifest an attestation entry describes (its `vnd.docker.reference.digest`).
pub fn reference_digest(d: &Descriptor) -> Result<Digest, OciError> {
    let value = d
        .annotations
        .as_ref()
        .and_then(|a| a.get(REFERENCE_DIGEST))
        .cloned()
        .unwrap_or_default();
    value.parse().map_err(|_| OciError::Invalid {
        what: "attestation reference digest",
        context: format!("attestation manifest {}", d.digest),
        value,
    })
}

/// Stores the statements as an attestation manifest of `subject` (a stored image manifest's
/// digest) and returns its index entry.
pub fn commit_attestations(
    store: &Store,
    subject: &Digest,
    statements: &[Statement],
) -> Result<Descriptor, OciError> {
    let mut layers = Vec::with_capacity(statements.len());
    for statement in statements {
        let bytes = statement.to_json();
        let digest = put(store, &bytes, "attestation statement")?;
        layers.push(Descriptor {
            annotations: Some(BTreeMap::from([(
                PREDICATE_TYPE_ANNOTATION.to_string(),
                statement.predicate_type.clone(),
            )])),
            ..Descriptor::new(IN_TOTO_MEDIA_TYPE, digest, bytes.len() as u64)
        });
    }
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    let platform = unknown_platform();
    let config = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
    let config_digest = put(store, &config_bytes, "attestation config")?;
    let mut manifest = ImageManifest::oci(
        Descriptor::new(OCI_CONFIG, config_digest, config_bytes.len() as u64),
        layers,
    );
    manifest.media_type = Some(OCI_MANIFEST.to_string());
    let bytes = manifest.to_json();
    let digest = put(store, &bytes, "attestation manifest")?;
    Ok(Descriptor {
        annotations: Some(BTreeMap::from([
            (REFERENCE_TYPE.to_string(), ATTESTATION_MANIFEST.to_string()),
            (REFERENCE_DIGEST.to_string(), subject.to_string()),
        ])),
        platform: Some(platform),
        ..Descriptor::new(OCI_MANIFEST, digest, bytes.len() as u64)
    })
}

/// The distribution form of stored attestation entry `entry`, whose subject was distributed
/// as `dist_subject`: the statements name `dist_subject` where they named the stored manifest,
/// and so does the entry's reference annotation. Equal inputs give equal bytes.
pub fn distribution_attestation(
    store: &Store,
    entry: &Descriptor,
    dist_subject: &Digest,
) -> Result<Descriptor, OciError> {
    let stored_subject = reference_digest(entry)?;
    let bytes = store
        .blobs()
        .read(&entry.digest)
        .map_err(OciError::store(format!(
            "read attestation manifest {}",
            entry.digest
        )))?;
    let manifest = ImageManifest::parse(&bytes, &entry.digest.to_string())?;
    let mut statements = Vec::with_capacity(manifest.layers.len());
    for layer in &manifest.layers {
        let blob = store
            .blobs()
            .read(&layer.digest)
            .map_err(OciError::store(format!(
                "read attestation {}",
                layer.digest
            )))?;
        let mut statement: Statement =
            serde_json::from_slice(&blob).map_err(|source| OciError::Json {
                what: "in-toto statement",
                context: layer.digest.to_string(),
                source,
            })?;
        for subject in &mut statement.subject {
            if subject.is(&stored_subject) {
                *subject = super::Subject::new(subject.name.clone(), dist_subject);
            }
        }
        statements.push(statement);
    }
    commit_attestations(store, dist_subject, &statements)
}

fn put(store: &Store, bytes: &[u8], what: &'static str) -> Result<Digest, OciError> {
    store
        .blobs()
        .put(bytes)
        .map_err(OciError::store(format!("write {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::Subject;

    #[test]
    fn an_attestation_manifest_is_shaped_as_buildkits_and_its_distribution_names_the_new_subject() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let stored = Digest::of(b"stored manifest");
        let pushed = Digest::of(b"pushed manifest");
        let statement = Statement::new(
            "https://slsa.dev/provenance/v0.2",
            vec![Subject::new("pkg:docker/app@1".into(), &stored)],
            json!({"buildType": "x"}),
        );
        let entry = commit_attestations(&store, &stored, &[statement]).unwrap();
        assert!(is_attestation(&entry));
        assert_eq!(entry.platform, Some(unknown_platform()));
        assert_eq!(reference_digest(&entry).unwrap(), stored);
        let manifest =
            ImageManifest::parse(&store.blobs().read(&entry.digest).unwrap(), "m").unwrap();
        assert_eq!(manifest.layers[0].media_type, IN_TOTO_MEDIA_TYPE);
        let config: serde_json::Value =
            serde_json::from_slice(&store.blobs().read(&manifest.config.digest).unwrap()).unwrap();
        assert_eq!(config["os"], "unknown");
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            manifest.layers[0].digest.to_string()
        );

        let dist = distribution_attestation(&store, &entry, &pushed).unwrap();
        assert_eq!(reference_digest(&dist).unwrap(), pushed);
        let manifest =
            ImageManifest::parse(&store.blobs().read(&dist.digest).unwrap(), "m").unwrap();
        let statement: Statement =
            serde_json::from_slice(&store.blobs().read(&manifest.layers[0].digest).unwrap())
                .unwrap();
        assert!(statement.subject[0].is(&pushed));
        assert_eq!(statement.subject[0].name, "pkg:docker/app@1");
        // The same inputs give the same manifest.
        assert_eq!(
            distribution_attestation(&store, &entry, &pushed).unwrap(),
            dist
        );
    }
}
