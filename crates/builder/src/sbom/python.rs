//! Python distributions: a `*.dist-info/METADATA` file, or an egg's `PKG-INFO` of the same
//! format (email-header fields up to the first blank line: `Name`, `Version`,
//! `License`/`License-Expression`, `Author`/`Author-email`), in a `site-packages` or
//! `dist-packages` directory anywhere in the image.

use rbuild_oci::attest::purl;
use rbuild_oci::attest::spdx::{Ecosystem, Package};

/// The distribution described by METADATA text `text` (read from image path `source`), if it
/// names itself and its version.
pub fn parse(text: &str, source: &str) -> Option<Package> {
    let mut name = None;
    let mut version = None;
    let mut license = None;
    let mut expression = None;
    let mut author = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "version" => version = Some(v),
            "license" if !v.is_empty() && v != "UNKNOWN" => license = Some(v),
            "license-expression" => expression = Some(v),
            "author" | "author-email" if author.is_none() && !v.is_empty() => author = Some(v),
            _ => {}
        }
    }
    let (name, version) = (name?, version?);
    let normalised = normalise(&name);
    Some(Package {
        ecosystem: Ecosystem::Python,
        purl: purl::package("pypi", None, &normalised, Some(&version), &[]),
        name,
        version,
        license: expression.or(license),
        supplier: author,
        source: source.to_string(),
    })
}

/// PEP 503's normalised project name: lower case, runs of `-`, `_`, `.` as one `-`.
fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_headers_name_the_distribution() {
        let text = "Metadata-Version: 2.1\nName: Flask_Login\nVersion: 0.6.3\n\
                    License: MIT\nAuthor: Matthew Frazier\n\nLicense: not a header\n";
        let p = parse(text, "/usr/lib/python3/dist-packages/x.dist-info/METADATA").unwrap();
        assert_eq!(p.name, "Flask_Login");
        assert_eq!(p.purl, "pkg:pypi/flask-login@0.6.3");
        assert_eq!(p.license.as_deref(), Some("MIT"));
        assert!(parse("Name: x\n", "m").is_none());
    }
}
