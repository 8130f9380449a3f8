//! Attestations (`--provenance`, `--sbom`, `--attest`), in the form BuildKit attaches them:
//! in-toto statements ([`statement`]) whose predicates are SLSA provenance ([`provenance`]) or
//! an SPDX document ([`spdx`]), stored as the layers of an *attestation manifest*
//! ([`manifest`]) that sits in the image index beside the image it describes, with platform
//! `unknown/unknown` and the annotations `vnd.docker.reference.type=attestation-manifest` and
//! `vnd.docker.reference.digest=<the image manifest>`.
//!
//! Invariant: a stored attestation's statements name the *stored* image manifest as their
//! subject; the distribution form (push, OCI layout) names the distributed manifest instead
//! (its layers are compressed, so its digest differs), rewritten by
//! [`manifest::distribution_attestation`] when the index is distributed.

pub mod manifest;
pub mod provenance;
pub mod purl;
pub mod spdx;
pub mod statement;

pub use manifest::{
    commit_attestations, distribution_attestation, is_attestation, reference_digest,
    ATTESTATION_MANIFEST, REFERENCE_DIGEST, REFERENCE_TYPE,
};
pub use statement::{Statement, Subject, IN_TOTO_MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION};
