//! dpkg's database: `/var/lib/dpkg/status` (paragraphs of `Field: value` lines, continuation
//! lines indented), and distroless images' `/var/lib/dpkg/status.d/*` (one paragraph per file,
//! without a `Status` field). A package counts when its `Status` says `installed` (or it has
//! none, as in `status.d`).

use rbuild_oci::attest::purl;
use rbuild_oci::attest::spdx::{Ecosystem, Package};

use super::{paragraphs, Distro};

/// The installed packages of dpkg status text `text` (read from image path `source`).
pub fn parse(text: &str, source: &str, distro: &Distro) -> Vec<Package> {
    let mut out = Vec::new();
    for fields in paragraphs(text, ':') {
        let get = |k: &str| {
            fields
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let (Some(name), Some(version)) = (get("Package"), get("Version")) else {
            continue;
        };
        if let Some(status) = get("Status") {
            if status.split_whitespace().nth(2) != Some("installed") {
                continue;
            }
        }
        let mut qualifiers = Vec::new();
        if let Some(arch) = get("Architecture") {
            qualifiers.push(("arch", arch.to_string()));
        }
        if let Some(d) = distro.qualifier() {
            qualifiers.push(("distro", d));
        }
        out.push(Package {
            ecosystem: Ecosystem::Deb,
            name: name.to_string(),
            version: version.to_string(),
            purl: purl::package(
                "deb",
                Some(distro.id_or("debian")),
                name,
                Some(version),
                &qualifiers,
            ),
            license: None,
            supplier: get("Maintainer").map(str::to_string),
            source: source.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_packages_are_listed_and_removed_ones_are_not() {
        let text = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
                    Version: 2.36-9+deb12u4\nMaintainer: GNU Libc Maintainers <x@debian.org>\n\
                    Description: GNU C Library\n more text\n .\n\n\
                    Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
                    Package: base-files\nVersion: 12.4\nArchitecture: amd64\n";
        let distro = Distro {
            id: Some("debian".into()),
            version_id: Some("12".into()),
        };
        let p = parse(text, "/var/lib/dpkg/status", &distro);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "libc6");
        assert_eq!(
            p[0].purl,
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(p[1].name, "base-files");
    }
}
