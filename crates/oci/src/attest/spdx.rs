//! The SBOM as an SPDX 2.3 JSON document (predicate type `https://spdx.dev/Document`), the
//! format BuildKit's scanner (docker/buildkit-syft-scanner) writes: one SPDX package per
//! installed package, each with its purl as a `PACKAGE-MANAGER` external reference, described
//! by the document.
//!
//! The document is a function of its inputs: its namespace is derived from a digest of the
//! packages and the image name, and its creation time is given (the build's
//! `SOURCE_DATE_EPOCH` when set), so the same root filesystem gives the same bytes.

use rbuild_types::Hasher;
use serde_json::{json, Value};

/// The predicate type of an SPDX document.
pub const PREDICATE_TYPE: &str = "https://spdx.dev/Document";

/// Which package database a package was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    /// `/var/lib/dpkg/status` or `status.d/`.
    Deb,
    /// `/lib/apk/db/installed`.
    Apk,
    /// A Python distribution's `*.dist-info/METADATA`.
    Python,
}

impl Ecosystem {
    fn id_part(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Python => "python",
        }
    }
}

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// Its package URL.
    pub purl: String,
    /// The declared license, when the database names one (apk, Python).
    pub license: Option<String>,
    /// The maintainer or author, as the database gives it.
    pub supplier: Option<String>,
    /// The database file it was read from (an image path).
    pub source: String,
}

/// The SPDX document of `packages` found in the image named `name`, created at `created`
/// (Unix seconds) by `creator` (`rbuild-0.1.0`).
pub fn document(name: &str, packages: &[Package], created: u64, creator: &str) -> Value {
    let mut hasher = Hasher::new();
    hasher.field(name.as_bytes());
    for p in packages {
        for part in [&p.purl, &p.name, &p.version, &p.source] {
            hasher.field(part.as_bytes());
        }
    }
    let hex = hasher.finish().hex();
    let mut spdx_packages = Vec::with_capacity(packages.len());
    let mut relationships = Vec::with_capacity(packages.len());
    for (i, p) in packages.iter().enumerate() {
        let id = format!(
            "SPDXRef-Package-{}-{}-{i}",
            p.ecosystem.id_part(),
            id_safe(&p.name)
        );
        let license = p
            .license
            .as_deref()
            .filter(|l| is_simple_license(l))
            .unwrap_or("NOASSERTION");
        let supplier = p
            .supplier
            .as_deref()
            .map_or("NOASSERTION".to_string(), |s| {
                format!("Person: {}", one_line(s))
            });
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": license,
            "copyrightText": "NOASSERTION",
            "supplier": supplier,
            "sourceInfo": format!("acquired package info from {}", p.source),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl,
            }],
        });
        if let Some(l) = p.license.as_deref().filter(|l| !is_simple_license(l)) {
            pkg["licenseComments"] = one_line(l).into();
        }
        spdx_packages.push(pkg);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": id,
        }));
    }
    let doc_name = if name.is_empty() { "image" } else { name };
    let namespace = format!(
        "https://spdx.org/spdxdocs/rbuild-{}-{hex}",
        id_safe(doc_name)
    );
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": doc_name,
        "documentNamespace": namespace,
        "creationInfo": {
            "created": crate::time::rfc3339(created),
            "creators": [format!("Tool: {creator}")],
        },
        "packages": spdx_packages,
        "relationships": relationships,
    })
}

/// An SPDX id part: letters, digits, `.` and `-` only.
fn id_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A license a package declares that is one SPDX identifier (`MIT`, `GPL-2.0-only`):
/// written as `licenseDeclared`; anything else (free text, expressions of unknown ids) goes
/// to `licenseComments`, and the declared license is `NOASSERTION`.
fn is_simple_license(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 64
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+')
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_lists_each_package_with_its_purl_and_is_deterministic() {
        let packages = vec![Package {
            ecosystem: Ecosystem::Apk,
            name: "musl".into(),
            version: "1.2.4-r2".into(),
            purl: "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64".into(),
            license: Some("MIT".into()),
            supplier: None,
            source: "/lib/apk/db/installed".into(),
        }];
        let doc = document("app:1", &packages, 0, "rbuild-0.1.0");
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["packages"][0]["SPDXID"], "SPDXRef-Package-apk-musl-0");
        assert_eq!(doc["packages"][0]["licenseDeclared"], "MIT");
        assert_eq!(
            doc["packages"][0]["externalRefs"][0]["referenceLocator"],
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"
        );
        assert_eq!(
            doc["relationships"][0]["relatedSpdxElement"],
            "SPDXRef-Package-apk-musl-0"
        );
        assert_eq!(doc, document("app:1", &packages, 0, "rbuild-0.1.0"));
        assert_ne!(
            doc["documentNamespace"],
            document("app:2", &packages, 0, "rbuild-0.1.0")["documentNamespace"]
        );
    }
}
