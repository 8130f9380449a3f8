//! What a registry serves, as far as pulling needs it: telling an index (OCI index, Docker
//! manifest list) from an image manifest, and picking a platform in an index. The documents
//! themselves are the one model of [`crate::manifest`].

use serde::Deserialize;

use rbuild_types::Platform;

use crate::manifest::{
    Descriptor, ImageIndex, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};

/// The `Accept` header of a manifest request: every format rbuild understands.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// What a manifest document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    /// OCI image index or Docker manifest list.
    Index,
    /// OCI image manifest or Docker v2 schema 2 manifest.
    Image,
}

/// Classifies a manifest by its media type (from `Content-Type`, else the document's own
/// `mediaType`, else its shape: `manifests` means an index, `config` an image manifest).
pub fn classify(content_type: Option<&str>, body: &[u8]) -> Option<(ManifestKind, String)> {
    let by_type = |t: &str| match t {
        OCI_INDEX | DOCKER_LIST => Some(ManifestKind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
        _ => None,
    };
    if let Some(ct) = content_type {
        let ct = ct.split(';').next().unwrap_or(ct).trim();
        if let Some(kind) = by_type(ct) {
            return Some((kind, ct.to_string()));
        }
    }
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, rename = "mediaType")]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(body).ok()?;
    if let Some(mt) = &probe.media_type {
        return by_type(mt).map(|k| (k, mt.clone()));
    }
    if probe.manifests.is_some() {
        Some((ManifestKind::Index, OCI_INDEX.to_string()))
    } else if probe.config.is_some() {
        Some((ManifestKind::Image, OCI_MANIFEST.to_string()))
    } else {
        None
    }
}

/// The index entry for `want`: same os and architecture, and the same variant when one is
/// asked for (`arm64` and `arm64/v8` are the same). Without a requested variant, an entry
/// without variant (or `v8` for arm64) is preferred, else the first matching one.
pub fn select_platform<'a>(index: &'a ImageIndex, want: &Platform) -> Option<&'a Descriptor> {
    let norm_variant = |arch: &str, v: Option<&str>| -> Option<String> {
        match (arch, v) {
            ("arm64", Some("v8")) | (_, Some("")) | (_, None) => None,
            (_, Some(v)) => Some(v.to_string()),
        }
    };
    let want_variant = norm_variant(&want.architecture, want.variant.as_deref());
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == want.os && p.architecture == want.architecture)
        })
        .collect();
    let variant_of = |d: &Descriptor| {
        d.platform
            .as_ref()
            .and_then(|p| norm_variant(&p.architecture, p.variant.as_deref()))
    };
    match want_variant {
        Some(v) => candidates
            .into_iter()
            .find(|d| variant_of(d).as_deref() == Some(v.as_str())),
        None => candidates
            .iter()
            .find(|d| variant_of(d).is_none())
            .or(candidates.first())
            .copied(),
    }
}

/// `linux/amd64, linux/arm/v7` — the platforms an index offers, for error messages.
pub fn describe_platforms(index: &ImageIndex) -> String {
    let list: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    if list.is_empty() {
        "no platforms".to_string()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rbuild_types::Digest;

    fn entry(os: &str, arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
            ..Descriptor::new(OCI_MANIFEST, Digest::of(&[n]), 1)
        }
    }

    #[test]
    fn selects_by_os_arch_variant() {
        let index = ImageIndex::oci(vec![
            entry("unknown", "unknown", None, 0),
            entry("linux", "arm", Some("v6"), 1),
            entry("linux", "arm", Some("v7"), 2),
            entry("linux", "amd64", None, 3),
            entry("linux", "arm64", Some("v8"), 4),
        ]);
        let pick = |p: &str| select_platform(&index, &p.parse().unwrap()).map(|d| d.digest);
        assert_eq!(pick("linux/amd64"), Some(Digest::of(&[3])));
        assert_eq!(pick("linux/arm/v7"), Some(Digest::of(&[2])));
        assert_eq!(pick("linux/arm64"), Some(Digest::of(&[4])));
        assert_eq!(pick("linux/arm64/v8"), Some(Digest::of(&[4])));
        assert_eq!(pick("linux/arm"), Some(Digest::of(&[1])));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("linux/arm/v5"), None);
        assert!(describe_platforms(&index).contains("linux/arm/v7"));
    }

    #[test]
    fn classifies_by_header_then_body() {
        assert_eq!(
            classify(Some("application/vnd.oci.image.index.v1+json"), b"{}"),
            Some((ManifestKind::Index, OCI_INDEX.into()))
        );
        let docker = format!(r#"{{"mediaType":"{DOCKER_MANIFEST}","config":{{}}}}"#);
        assert_eq!(
            classify(Some("application/octet-stream"), docker.as_bytes()),
            Some((ManifestKind::Image, DOCKER_MANIFEST.into()))
        );
        assert_eq!(
            classify(None, br#"{"schemaVersion":2,"manifests":[]}"#).map(|k| k.0),
            Some(ManifestKind::Index)
        );
        assert_eq!(classify(None, b"not json"), None);
        assert_eq!(
            classify(None, br#"{"mediaType":"application/x-other"}"#),
            None
        );
    }
}
