//! `--cache-from` / `--cache-to` in BuildKit's syntax (`type=local,dest=DIR,mode=max`) →
//! the builder's typed [`CacheFrom`] / [`CacheTo`]. Only `type=local` works so far; the other
//! types BuildKit has are a usage error that says so.

use std::path::PathBuf;

use rbuild_builder::{CacheFrom, CacheTo, CacheToKind};
use rbuild_oci::cache::ExportMode;

/// The cache types BuildKit knows that rbuild does not export or import yet.
const NOT_YET: &[&str] = &["registry", "inline", "gha", "s3", "azblob"];

/// What is wrong with a `--cache-from` or `--cache-to` value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheFlagError {
    #[error("invalid --{flag} {spec:?}: expected comma-separated key=value pairs")]
    Syntax { flag: &'static str, spec: String },
    #[error("invalid --{flag} {spec:?}: type={kind} is not supported yet (only type=local)")]
    NotYet {
        flag: &'static str,
        spec: String,
        kind: String,
    },
    #[error("invalid --{flag} {spec:?}: unknown cache type {kind:?} (only type=local)")]
    UnknownType {
        flag: &'static str,
        spec: String,
        kind: String,
    },
    #[error("invalid --{flag} {spec:?}: type=local needs {key}=DIR")]
    Missing {
        flag: &'static str,
        spec: String,
        key: &'static str,
    },
    #[error("invalid --{flag} {spec:?}: {key}={value:?} is not a valid value")]
    BadValue {
        flag: &'static str,
        spec: String,
        key: String,
        value: String,
    },
    #[error("invalid --{flag} {spec:?}: unknown key {key:?}")]
    UnknownKey {
        flag: &'static str,
        spec: String,
        key: String,
    },
}

/// The `key=value` pairs of a spec, and its `type` checked to be `local`. A spec without
/// `=` is BuildKit's shorthand for a registry reference, which is not supported yet.
fn pairs(flag: &'static str, spec: &str) -> Result<Vec<(String, String)>, CacheFlagError> {
    if !spec.contains('=') {
        return Err(CacheFlagError::NotYet {
            flag,
            spec: spec.into(),
            kind: "registry".into(),
        });
    }
    let mut out = Vec::new();
    let mut kind = None;
    for part in spec.split(',') {
        let (k, v) = part.split_once('=').ok_or_else(|| CacheFlagError::Syntax {
            flag,
            spec: spec.into(),
        })?;
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        if k == "type" {
            kind = Some(v);
        } else {
            out.push((k, v));
        }
    }
    match kind.as_deref() {
        Some("local") => Ok(out),
        Some(k) if NOT_YET.contains(&k) => Err(CacheFlagError::NotYet {
            flag,
            spec: spec.into(),
            kind: k.into(),
        }),
        // BuildKit's default type is registry.
        None => Err(CacheFlagError::NotYet {
            flag,
            spec: spec.into(),
            kind: "registry".into(),
        }),
        Some(k) => Err(CacheFlagError::UnknownType {
            flag,
            spec: spec.into(),
            kind: k.into(),
        }),
    }
}

fn unknown_key(flag: &'static str, spec: &str, key: String) -> CacheFlagError {
    CacheFlagError::UnknownKey {
        flag,
        spec: spec.into(),
        key,
    }
}

fn missing(flag: &'static str, spec: &str, key: &'static str) -> CacheFlagError {
    CacheFlagError::Missing {
        flag,
        spec: spec.into(),
        key,
    }
}

/// One `--cache-from` value.
pub fn parse_cache_from(spec: &str) -> Result<CacheFrom, CacheFlagError> {
    const FLAG: &str = "cache-from";
    let mut src = None;
    for (k, v) in pairs(FLAG, spec)? {
        match k.as_str() {
            "src" => src = Some(PathBuf::from(v)),
            _ => return Err(unknown_key(FLAG, spec, k)),
        }
    }
    let src = src.ok_or_else(|| missing(FLAG, spec, "src"))?;
    Ok(CacheFrom::Local { src })
}

/// One `--cache-to` value.
pub fn parse_cache_to(spec: &str) -> Result<CacheTo, CacheFlagError> {
    const FLAG: &str = "cache-to";
    let mut dest = None;
    let mut mode = ExportMode::Min;
    let mut ignore_error = false;
    for (k, v) in pairs(FLAG, spec)? {
        let bad = || CacheFlagError::BadValue {
            flag: FLAG,
            spec: spec.into(),
            key: k.clone(),
            value: v.clone(),
        };
        match k.as_str() {
            "dest" => dest = Some(PathBuf::from(&v)),
            "mode" => {
                mode = match v.as_str() {
                    "min" => ExportMode::Min,
                    "max" => ExportMode::Max,
                    _ => return Err(bad()),
                }
            }
            "ignore-error" => {
                ignore_error = match v.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad()),
                }
            }
            _ => return Err(unknown_key(FLAG, spec, k)),
        }
    }
    let dest = dest.ok_or_else(|| missing(FLAG, spec, "dest"))?;
    Ok(CacheTo {
        kind: CacheToKind::Local { dest, mode },
        ignore_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_specs() {
        assert_eq!(
            parse_cache_from("type=local,src=/c").unwrap(),
            CacheFrom::Local { src: "/c".into() }
        );
        let table = [
            ("type=local,dest=/c", ExportMode::Min, false),
            ("type=local,dest=/c,mode=max", ExportMode::Max, false),
            (
                "type=local,mode=min,dest=/c,ignore-error=true",
                ExportMode::Min,
                true,
            ),
        ];
        for (spec, mode, ignore_error) in table {
            assert_eq!(
                parse_cache_to(spec).unwrap(),
                CacheTo {
                    kind: CacheToKind::Local {
                        dest: "/c".into(),
                        mode
                    },
                    ignore_error
                },
                "{spec}"
            );
        }
    }

    #[test]
    fn other_types_are_not_supported_yet() {
        for spec in [
            "type=registry,ref=r/a:cache",
            "type=inline",
            "type=gha",
            "type=s3,bucket=b",
            "r/a:cache",
            "ref=r/a:cache",
        ] {
            let err = parse_cache_from(spec).unwrap_err();
            assert!(
                matches!(err, CacheFlagError::NotYet { .. }),
                "{spec}: {err}"
            );
            assert!(err.to_string().contains("not supported yet"), "{err}");
            assert!(matches!(
                parse_cache_to(spec),
                Err(CacheFlagError::NotYet { .. })
            ));
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for (spec, want) in [
            ("type=local", "needs dest=DIR"),
            ("type=local,dest=/c,mode=all", "mode=\"all\""),
            (
                "type=local,dest=/c,ignore-error=yes",
                "ignore-error=\"yes\"",
            ),
            ("type=local,dest=/c,color=red", "unknown key \"color\""),
            ("type=local,dest", "key=value"),
            ("type=ftp,dest=/c", "unknown cache type \"ftp\""),
        ] {
            let err = parse_cache_to(spec).unwrap_err().to_string();
            assert!(err.contains(want), "{spec}: {err}");
        }
        assert!(parse_cache_from("type=local")
            .unwrap_err()
            .to_string()
            .contains("needs src=DIR"));
    }
}
