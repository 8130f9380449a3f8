//! What attestations a build makes, from buildx's flags: `--attest type=provenance|sbom,…`
//! (the general form), `--provenance=VALUE` (short for `--attest type=provenance,VALUE`; `true`
//! and `false` as in buildx) and `--sbom=VALUE` (likewise). A later flag for a type replaces an
//! earlier one. Nothing is attested unless asked (buildx adds `mode=min` provenance by default
//! for some drivers; rbuild keeps image digests unchanged unless asked).

pub use rbuild_oci::attest::provenance::{Mode, Version};

/// `type=provenance`'s options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProvenanceSpec {
    /// `mode=min|max` (BuildKit's `full` is `max`); default `min`, as buildx's.
    pub mode: Mode,
    /// `builder-id=`: the predicate's `builder.id`.
    pub builder_id: String,
    /// `reproducible=true`: the predicate's `metadata.reproducible`.
    pub reproducible: bool,
    /// `version=v0.2|v1`: which SLSA provenance (default v0.2, as BuildKit's).
    pub version: Version,
}

/// What to attest; both `None` means no attestation (and no index for one platform).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attestations {
    pub provenance: Option<ProvenanceSpec>,
    /// `type=sbom`: an SPDX document of the image's packages.
    pub sbom: bool,
}

/// An attestation flag that cannot be used as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    #[error("--attest {spec:?}: missing type= (provenance or sbom)")]
    MissingType { spec: String },
    #[error("--attest {spec:?}: unknown attestation type {kind:?} (provenance or sbom)")]
    UnknownType { spec: String, kind: String },
    #[error("{flag} {spec:?}: {key}= is not a {kind} option")]
    UnknownKey {
        flag: &'static str,
        spec: String,
        kind: &'static str,
        key: String,
    },
    #[error("{flag} {spec:?}: invalid {key}={value:?}: expected {expected}")]
    BadValue {
        flag: &'static str,
        spec: String,
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{flag} {spec:?}: {what} is not supported: {why}")]
    NotSupported {
        flag: &'static str,
        spec: String,
        what: String,
        why: &'static str,
    },
}

impl Attestations {
    /// Whether nothing is attested.
    pub fn is_empty(&self) -> bool {
        self.provenance.is_none() && !self.sbom
    }

    /// `--attest SPEC`: `type=provenance[,mode=…][,builder-id=…][,reproducible=…]
    /// [,version=v0.2|v1][,disabled=true]` or `type=sbom[,disabled=true]`.
    pub fn attest(&mut self, spec: &str) -> Result<(), AttestError> {
        let pairs = pairs(spec);
        let kind = pairs
            .iter()
            .find(|(k, _)| k == "type")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| AttestError::MissingType {
                spec: spec.to_string(),
            })?;
        let rest: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "type").collect();
        match kind.as_str() {
            "provenance" => self.provenance_pairs("--attest", spec, rest),
            "sbom" => self.sbom_pairs("--attest", spec, rest),
            _ => Err(AttestError::UnknownType {
                spec: spec.to_string(),
                kind,
            }),
        }
    }

    /// `--provenance VALUE`: `true`, `false`, or `type=provenance`'s options (`mode=max`).
    pub fn provenance(&mut self, value: &str) -> Result<(), AttestError> {
        match parse_bool(value) {
            Some(true) => self.provenance_pairs("--provenance", value, Vec::new()),
            Some(false) => {
                self.provenance = None;
                Ok(())
            }
            None => self.provenance_pairs("--provenance", value, pairs(value)),
        }
    }

    /// `--sbom VALUE`: `true`, `false`, or `type=sbom`'s options.
    pub fn sbom(&mut self, value: &str) -> Result<(), AttestError> {
        match parse_bool(value) {
            Some(on) => {
                self.sbom = on;
                Ok(())
            }
            None => self.sbom_pairs("--sbom", value, pairs(value)),
        }
    }

    fn provenance_pairs(
        &mut self,
        flag: &'static str,
        spec: &str,
        pairs: Vec<(String, String)>,
    ) -> Result<(), AttestError> {
        let bad = |key: &'static str, value: &str, expected: &'static str| AttestError::BadValue {
            flag,
            spec: spec.to_string(),
            key,
            value: value.to_string(),
            expected,
        };
        let mut p = ProvenanceSpec::default();
        let mut disabled = false;
        for (k, v) in pairs {
            match k.as_str() {
                "mode" => {
                    p.mode = match v.as_str() {
                        "min" => Mode::Min,
                        "max" | "full" => Mode::Max,
                        _ => return Err(bad("mode", &v, "min or max")),
                    }
                }
                "builder-id" => p.builder_id = v,
                "reproducible" => {
                    p.reproducible =
                        parse_bool(&v).ok_or_else(|| bad("reproducible", &v, "true or false"))?
                }
                "disabled" => {
                    disabled = parse_bool(&v).ok_or_else(|| bad("disabled", &v, "true or false"))?
                }
                "version" => {
                    p.version = match v.as_str() {
                        "v0.2" => Version::V02,
                        "v1" => Version::V1,
                        _ => return Err(bad("version", &v, "v0.2 or v1")),
                    }
                }
                _ => {
                    return Err(AttestError::UnknownKey {
                        flag,
                        spec: spec.to_string(),
                        kind: "provenance",
                        key: k,
                    })
                }
            }
        }
        self.provenance = (!disabled).then_some(p);
        Ok(())
    }

    fn sbom_pairs(
        &mut self,
        flag: &'static str,
        spec: &str,
        pairs: Vec<(String, String)>,
    ) -> Result<(), AttestError> {
        let mut disabled = false;
        for (k, v) in pairs {
            match k.as_str() {
                "disabled" => {
                    disabled = parse_bool(&v).ok_or_else(|| AttestError::BadValue {
                        flag,
                        spec: spec.to_string(),
                        key: "disabled",
                        value: v.clone(),
                        expected: "true or false",
                    })?
                }
                "generator" => {
                    return Err(AttestError::NotSupported {
                        flag,
                        spec: spec.to_string(),
                        what: format!("generator={v}"),
                        why: "rbuild runs no scanner image; it reads the image's dpkg, apk and \
                              Python package databases itself",
                    })
                }
                "scan-context" | "scan-stage" => {
                    return Err(AttestError::NotSupported {
                        flag,
                        spec: spec.to_string(),
                        what: format!("{k}="),
                        why: "only the final image is scanned",
                    })
                }
                _ => {
                    return Err(AttestError::UnknownKey {
                        flag,
                        spec: spec.to_string(),
                        kind: "sbom",
                        key: k,
                    })
                }
            }
        }
        self.sbom = !disabled;
        Ok(())
    }
}

/// `a=1,b=2` as pairs (a bare word is a key with an empty value).
fn pairs(spec: &str) -> Vec<(String, String)> {
    spec.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (p.to_ascii_lowercase(), String::new()),
        })
        .collect()
}

/// Go's `strconv.ParseBool`, which buildx uses for these flags.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_set_and_clear_each_type() {
        let mut a = Attestations::default();
        assert!(a.is_empty());
        a.provenance("true").unwrap();
        assert_eq!(a.provenance, Some(ProvenanceSpec::default()));
        a.provenance("mode=max,builder-id=https://ci/1").unwrap();
        let p = a.provenance.clone().unwrap();
        assert_eq!((p.mode, p.builder_id.as_str()), (Mode::Max, "https://ci/1"));
        a.attest("type=sbom").unwrap();
        assert!(a.sbom);
        a.attest("type=provenance,disabled=true").unwrap();
        assert_eq!(a.provenance, None);
        a.sbom("false").unwrap();
        assert!(a.is_empty());
        a.attest("type=provenance,mode=full,version=v1").unwrap();
        let p = a.provenance.unwrap();
        assert_eq!((p.mode, p.version), (Mode::Max, Version::V1));
    }

    #[test]
    fn what_rbuild_cannot_do_is_refused_by_name() {
        let mut a = Attestations::default();
        assert!(matches!(
            a.sbom("generator=docker/buildkit-syft-scanner"),
            Err(AttestError::NotSupported { .. })
        ));
        assert!(matches!(
            a.attest("type=provenance,version=v2"),
            Err(AttestError::BadValue { .. })
        ));
        assert!(matches!(
            a.attest("mode=max"),
            Err(AttestError::MissingType { .. })
        ));
        assert!(matches!(
            a.attest("type=vex"),
            Err(AttestError::UnknownType { .. })
        ));
        assert!(matches!(
            a.provenance("mode=maximal"),
            Err(AttestError::BadValue { .. })
        ));
        assert!(matches!(
            a.provenance("colour=red"),
            Err(AttestError::UnknownKey { .. })
        ));
        let e = a.sbom("generator=img").unwrap_err().to_string();
        assert!(e.contains("generator=img is not supported"), "{e}");
    }
}
