//! apk's database, `/lib/apk/db/installed`: paragraphs of `K:value` lines (`P` name, `V`
//! version, `A` architecture, `L` license, `m` maintainer), one per installed package.

use rbuild_oci::attest::purl;
use rbuild_oci::attest::spdx::{Ecosystem, Package};

use super::{paragraphs, Distro};

/// The packages of apk database text `text` (read from image path `source`).
pub fn parse(text: &str, source: &str, distro: &Distro) -> Vec<Package> {
    let mut out = Vec::new();
    for fields in paragraphs(text, ':') {
        // apk's keys are case-sensitive single letters (`m` maintainer, `M` mode).
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
        let (Some(name), Some(version)) = (get("P"), get("V")) else {
            continue;
        };
        let mut qualifiers = Vec::new();
        if let Some(arch) = get("A") {
            qualifiers.push(("arch", arch.to_string()));
        }
        if let Some(d) = distro.qualifier() {
            qualifiers.push(("distro", d));
        }
        out.push(Package {
            ecosystem: Ecosystem::Apk,
            name: name.to_string(),
            version: version.to_string(),
            purl: purl::package(
                "apk",
                Some(distro.id_or("alpine")),
                name,
                Some(version),
                &qualifiers,
            ),
            license: get("L").map(str::to_string),
            supplier: get("m").map(str::to_string),
            source: source.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_paragraph_is_a_package() {
        let text = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\nm:Timo <t@alpine>\n\n\
                    P:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\nF:bin\nR:busybox\n\n";
        let distro = Distro::default();
        let p = parse(text, "/lib/apk/db/installed", &distro);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].purl, "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64");
        assert_eq!(p[1].license.as_deref(), Some("GPL-2.0-only"));
    }
}
