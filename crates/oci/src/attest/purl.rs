//! Package URLs (purl) as attestations use them, made with the `packageurl` crate:
//! `pkg:docker/NAMESPACE/NAME@TAG?platform=linux%2Famd64` for images (BuildKit's
//! `util/purl.RefToPURL`: the familiar name split at its last `/`), and
//! `pkg:deb/debian/NAME@VERSION?arch=…`, `pkg:apk/alpine/…`, `pkg:pypi/…` for the packages an
//! SBOM lists.

use packageurl::PackageUrl;
use rbuild_types::{ImageRef, Platform};

/// The purl of image `image` (tagged `latest` when it has no tag; a digest reference gets a
/// `digest` qualifier, as BuildKit's), with `platform` as a qualifier when given.
pub fn image(image: &ImageRef, platform: Option<&Platform>) -> String {
    // The familiar name without tag or digest.
    let familiar = ImageRef {
        tag: None,
        digest: None,
        ..image.clone()
    }
    .familiar();
    let name_only = familiar.as_str();
    let (namespace, name) = match name_only.rsplit_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, name_only),
    };
    let tag = match (&image.tag, &image.digest) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    };
    let mut qualifiers = Vec::new();
    if let Some(d) = &image.digest {
        qualifiers.push(("digest", d.to_string()));
    }
    if let Some(p) = platform {
        qualifiers.push(("platform", p.to_string()));
    }
    build("docker", namespace, name, tag.as_deref(), &qualifiers)
}

/// The purl of a package of type `ty` (`deb`, `apk`, `pypi`).
pub fn package(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, String)],
) -> String {
    build(ty, namespace, name, version, qualifiers)
}

fn build(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, String)],
) -> String {
    // The crate refuses only an empty name or type and malformed qualifier keys, none of
    // which callers pass; an unrepresentable purl is then left out (empty string).
    let Ok(mut purl) = PackageUrl::new(ty, name) else {
        return String::new();
    };
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        let _ = purl.with_namespace(ns);
    }
    if let Some(v) = version.filter(|v| !v.is_empty()) {
        let _ = purl.with_version(v);
    }
    for (k, v) in qualifiers {
        if !v.is_empty() {
            let _ = purl.add_qualifier(*k, v.as_str());
        }
    }
    purl.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_purls_are_buildkits() {
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(
            image(&r, Some(&amd64)),
            "pkg:docker/busybox@latest?platform=linux%2Famd64"
        );
        let r = ImageRef::parse("127.0.0.1:5000/team/app:1.0").unwrap();
        assert_eq!(image(&r, None), "pkg:docker/127.0.0.1:5000/team/app@1.0");
        let r = ImageRef::parse("ghcr.io/o/app:v2").unwrap();
        assert_eq!(image(&r, None), "pkg:docker/ghcr.io/o/app@v2");
    }

    #[test]
    fn package_purls_carry_namespace_version_and_qualifiers() {
        assert_eq!(
            package(
                "deb",
                Some("debian"),
                "libc6",
                Some("2.36-9+deb12u4"),
                &[("arch", "amd64".into())]
            ),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
        );
        assert_eq!(
            package("pypi", None, "requests", Some("2.31.0"), &[]),
            "pkg:pypi/requests@2.31.0"
        );
    }
}
