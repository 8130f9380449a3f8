//! The in-toto statement (ITE-6): `_type`, `subject` (what is attested: a name and its
//! digests), `predicateType` and `predicate`. BuildKit writes `https://in-toto.io/Statement/v1`
//! statements (in-toto-golang's `StatementInTotoV1`), each the blob of one layer of the
//! attestation manifest.

use std::collections::BTreeMap;

use rbuild_types::Digest;
use serde::{Deserialize, Serialize};

/// The media type of a statement blob (in-toto's payload type).
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The layer annotation naming a statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "in-toto.io/predicate-type";
/// The statement type BuildKit writes.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// One subject of a statement: a name (a `pkg:docker/…` purl of the image) and its digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    /// Algorithm → hex (`{"sha256": "…"}`).
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// A subject named `name` with `digest`.
    pub fn new(name: String, digest: &Digest) -> Self {
        Subject {
            name,
            digest: BTreeMap::from([("sha256".to_string(), digest.hex().to_string())]),
        }
    }

    /// Whether this subject's sha256 is `digest`.
    pub fn is(&self, digest: &Digest) -> bool {
        self.digest.get("sha256") == Some(&digest.hex())
    }
}

/// An in-toto statement with its predicate as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub subject: Vec<Subject>,
    pub predicate: serde_json::Value,
}

impl Statement {
    /// A statement of `predicate` (of `predicate_type`) about `subject`.
    pub fn new(predicate_type: &str, subject: Vec<Subject>, predicate: serde_json::Value) -> Self {
        Statement {
            statement_type: STATEMENT_TYPE.to_string(),
            predicate_type: predicate_type.to_string(),
            subject,
            predicate,
        }
    }

    /// The statement as a file of a `type=local` output (indented, as BuildKit's local
    /// exporter writes it).
    pub fn to_json_pretty(&self) -> Vec<u8> {
        // Strings and JSON values: serialising cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The statement's bytes as stored (compact JSON, as BuildKit marshals it).
    pub fn to_json(&self) -> Vec<u8> {
        // Strings and JSON values: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
