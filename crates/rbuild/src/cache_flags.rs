//! `--cache-from` / `--cache-to` in BuildKit's syntax (`type=local,dest=DIR,mode=max`,
//! `type=registry,ref=REG/REPO:TAG,image-manifest=true`, or just `REF`, BuildKit's shorthand for
//! a registry reference) → the builder's typed [`CacheFrom`] / [`CacheTo`]. `type=local`,
//! `type=registry` and (`--cache-to` only, as BuildKit's) `type=inline` work; the other types
//! BuildKit has are a usage error that says so.
//!
//! Beyond BuildKit (moby/buildkit#1474): `cache-mounts=true` on a `type=local` or
//! `type=registry` `--cache-to` exports the build's `RUN --mount=type=cache` directories
//! (`cache-mounts-max-size=SIZE`, default 1 GiB, each: `512MiB`, `1GB`, plain bytes, in the
//! units of `rbuild prune --keep-storage`), and on a `--cache-from` imports them.

use std::path::PathBuf;

use rbuild_builder::gc::parse_size;
use rbuild_builder::output::{parse_bool, parse_compression, parse_level};
use rbuild_builder::{CacheFrom, CacheTo, CacheToKind, DEFAULT_CACHE_MOUNT_MAX_SIZE};
use rbuild_oci::cache::{ExportMode, RegistryCacheOptions};
use rbuild_types::ImageRef;

/// The cache types BuildKit knows that rbuild does not export or import yet.
const NOT_YET: &[&str] = &["gha", "s3", "azblob"];

/// What is wrong with a `--cache-from` or `--cache-to` value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheFlagError {
    #[error("invalid --{flag} {spec:?}: expected comma-separated key=value pairs")]
    Syntax { flag: &'static str, spec: String },
    #[error("invalid --{flag} {spec:?}: type={kind} is not supported yet (only type=local, type=registry and type=inline)")]
    NotYet {
        flag: &'static str,
        spec: String,
        kind: String,
    },
    #[error("invalid --{flag} {spec:?}: unknown cache type {kind:?} (only type=local, type=registry and type=inline)")]
    UnknownType {
        flag: &'static str,
        spec: String,
        kind: String,
    },
    #[error("invalid --{flag} {spec:?}: type={kind} needs {key}={what}")]
    Missing {
        flag: &'static str,
        spec: String,
        kind: &'static str,
        key: &'static str,
        what: &'static str,
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
    #[error("invalid --{flag} {spec:?}: image-manifest=true needs OCI media types (oci-mediatypes=true)")]
    ImageManifestNeedsOci { flag: &'static str, spec: String },
    #[error("invalid --cache-from {0:?}: type=inline is for --cache-to; read an image's inline cache with --cache-from type=registry,ref=IMAGE")]
    InlineFrom(String),
    #[error("invalid --cache-to {0:?}: type=inline cannot export cache mounts (an image config cannot carry their contents); use type=local or type=registry with cache-mounts=true")]
    InlineCacheMounts(String),
    #[error("invalid --cache-to {0:?}: cache-mounts-max-size needs cache-mounts=true")]
    MaxSizeWithoutMounts(String),
}

/// The cache types rbuild reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CacheType {
    Local,
    Registry,
    Inline,
}

/// The type of a spec and its other `key=value` pairs. A spec without `=` is BuildKit's
/// shorthand for `type=registry,ref=SPEC`; BuildKit's default type is `registry`.
fn pairs(
    flag: &'static str,
    spec: &str,
) -> Result<(CacheType, Vec<(String, String)>), CacheFlagError> {
    if !spec.contains('=') {
        return Ok((
            CacheType::Registry,
            vec![("ref".into(), spec.trim().into())],
        ));
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
        Some("local") => Ok((CacheType::Local, out)),
        Some("registry") | None => Ok((CacheType::Registry, out)),
        Some("inline") => Ok((CacheType::Inline, out)),
        Some(k) if NOT_YET.contains(&k) => Err(CacheFlagError::NotYet {
            flag,
            spec: spec.into(),
            kind: k.into(),
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

fn missing(flag: &'static str, spec: &str, kind: CacheType, key: &'static str) -> CacheFlagError {
    let (kind, what) = match kind {
        CacheType::Local => ("local", "DIR"),
        CacheType::Registry | CacheType::Inline => ("registry", "REF"),
    };
    CacheFlagError::Missing {
        flag,
        spec: spec.into(),
        kind,
        key,
        what,
    }
}

/// The error for `key=value` of `spec`.
fn bad_value(flag: &'static str, spec: &str, key: &str, value: &str) -> CacheFlagError {
    CacheFlagError::BadValue {
        flag,
        spec: spec.into(),
        key: key.into(),
        value: value.into(),
    }
}

/// A `ref=` value.
fn reference(flag: &'static str, spec: &str, v: &str) -> Result<ImageRef, CacheFlagError> {
    ImageRef::parse(v).map_err(|_| bad_value(flag, spec, "ref", v))
}

/// One `--cache-from` value.
pub fn parse_cache_from(spec: &str) -> Result<CacheFrom, CacheFlagError> {
    const FLAG: &str = "cache-from";
    let (kind, pairs) = pairs(FLAG, spec)?;
    if kind == CacheType::Inline {
        return Err(CacheFlagError::InlineFrom(spec.into()));
    }
    let mut src = None;
    let mut cache_mounts = false;
    for (k, v) in pairs {
        match (kind, k.as_str()) {
            (CacheType::Local, "src") | (CacheType::Registry, "ref") => src = Some(v),
            (_, "cache-mounts") => {
                cache_mounts = parse_bool(&v).ok_or_else(|| bad_value(FLAG, spec, &k, &v))?
            }
            _ => return Err(unknown_key(FLAG, spec, k)),
        }
    }
    match kind {
        CacheType::Local | CacheType::Inline => {
            let src = src.ok_or_else(|| missing(FLAG, spec, kind, "src"))?;
            Ok(CacheFrom::Local {
                src: PathBuf::from(src),
                cache_mounts,
            })
        }
        CacheType::Registry => {
            let v = src.ok_or_else(|| missing(FLAG, spec, kind, "ref"))?;
            Ok(CacheFrom::Registry {
                reference: reference(FLAG, spec, &v)?,
                cache_mounts,
            })
        }
    }
}

/// One `--cache-to` value.
pub fn parse_cache_to(spec: &str) -> Result<CacheTo, CacheFlagError> {
    const FLAG: &str = "cache-to";
    let (kind, pairs) = pairs(FLAG, spec)?;
    let mut dest = None;
    let mut mode = ExportMode::Min;
    let mut ignore_error = false;
    let mut cache_mounts = false;
    let mut max_size = None;
    let mut options = RegistryCacheOptions::default();
    for (k, v) in pairs {
        let bad = || bad_value(FLAG, spec, &k, &v);
        let flag = || parse_bool(&v).ok_or_else(bad);
        match (kind, k.as_str()) {
            (CacheType::Local, "dest") | (CacheType::Registry, "ref") => dest = Some(v.clone()),
            (CacheType::Local | CacheType::Registry, "mode") => {
                mode = match v.as_str() {
                    "min" => ExportMode::Min,
                    "max" => ExportMode::Max,
                    _ => return Err(bad()),
                }
            }
            (_, "ignore-error") => ignore_error = flag()?,
            (_, "cache-mounts") => cache_mounts = flag()?,
            (_, "cache-mounts-max-size") => max_size = Some(parse_size(&v).map_err(|_| bad())?),
            (CacheType::Registry, "image-manifest") => options.image_manifest = flag()?,
            (CacheType::Registry, "oci-mediatypes") => options.oci_media_types = flag()?,
            (CacheType::Registry, "compression") => {
                options.compress.compression = parse_compression(&v).ok_or_else(bad)?
            }
            (CacheType::Registry, "compression-level") => {
                options.compress.level = Some(parse_level(&v).ok_or_else(bad)?)
            }
            // Accepted for BuildKit compatibility: every layer is compressed as asked.
            (CacheType::Registry, "force-compression") => {
                flag()?;
            }
            _ => return Err(unknown_key(FLAG, spec, k)),
        }
    }
    if kind == CacheType::Inline && cache_mounts {
        return Err(CacheFlagError::InlineCacheMounts(spec.into()));
    }
    if max_size.is_some() && !cache_mounts {
        return Err(CacheFlagError::MaxSizeWithoutMounts(spec.into()));
    }
    let cache_mounts = cache_mounts.then(|| max_size.unwrap_or(DEFAULT_CACHE_MOUNT_MAX_SIZE));
    let kind = match kind {
        CacheType::Inline => CacheToKind::Inline,
        CacheType::Local => CacheToKind::Local {
            dest: PathBuf::from(dest.ok_or_else(|| missing(FLAG, spec, kind, "dest"))?),
            mode,
        },
        CacheType::Registry => {
            let v = dest.ok_or_else(|| missing(FLAG, spec, kind, "ref"))?;
            if options.image_manifest && !options.oci_media_types {
                return Err(CacheFlagError::ImageManifestNeedsOci {
                    flag: FLAG,
                    spec: spec.into(),
                });
            }
            CacheToKind::Registry {
                reference: reference(FLAG, spec, &v)?,
                mode,
                options,
            }
        }
    };
    Ok(CacheTo {
        kind,
        ignore_error,
        cache_mounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_specs() {
        assert_eq!(
            parse_cache_from("type=local,src=/c").unwrap(),
            CacheFrom::Local {
                src: "/c".into(),
                cache_mounts: false
            }
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
                    ignore_error,
                    cache_mounts: None
                },
                "{spec}"
            );
        }
    }

    #[test]
    fn parses_registry_specs_and_the_shorthand() {
        let r = ImageRef::parse("r.io/a:cache").unwrap();
        for spec in [
            "type=registry,ref=r.io/a:cache",
            "r.io/a:cache",
            "ref=r.io/a:cache",
        ] {
            assert_eq!(
                parse_cache_from(spec).unwrap(),
                CacheFrom::Registry {
                    reference: r.clone(),
                    cache_mounts: false
                },
                "{spec}"
            );
        }
        let to = parse_cache_to(
            "type=registry,ref=r.io/a:cache,mode=max,image-manifest=true,\
             compression=zstd,compression-level=3,ignore-error=true",
        )
        .unwrap();
        let mut options = RegistryCacheOptions {
            image_manifest: true,
            ..RegistryCacheOptions::default()
        };
        options.compress.compression = rbuild_oci::compress::Compression::Zstd;
        options.compress.level = Some(3);
        assert_eq!(
            to,
            CacheTo {
                kind: CacheToKind::Registry {
                    reference: r,
                    mode: ExportMode::Max,
                    options
                },
                ignore_error: true,
                cache_mounts: None
            }
        );
        let err = parse_cache_to("type=registry,ref=r/a,image-manifest=true,oci-mediatypes=false");
        assert!(matches!(
            err,
            Err(CacheFlagError::ImageManifestNeedsOci { .. })
        ));
    }

    #[test]
    fn inline_is_for_cache_to_only() {
        assert_eq!(
            parse_cache_to("type=inline").unwrap(),
            CacheTo {
                kind: CacheToKind::Inline,
                ignore_error: false,
                cache_mounts: None
            }
        );
        let err = parse_cache_to("type=inline,cache-mounts=true").unwrap_err();
        assert!(matches!(err, CacheFlagError::InlineCacheMounts(_)), "{err}");
        assert!(err
            .to_string()
            .contains("type=inline cannot export cache mounts"));
        assert!(matches!(
            parse_cache_from("type=inline"),
            Err(CacheFlagError::InlineFrom(_))
        ));
        assert!(matches!(
            parse_cache_to("type=inline,mode=max"),
            Err(CacheFlagError::UnknownKey { .. })
        ));
    }

    #[test]
    fn cache_mounts_and_their_size_limit() {
        let max = |spec: &str| parse_cache_to(spec).map(|t| t.cache_mounts);
        assert_eq!(max("type=local,dest=/c"), Ok(None));
        assert_eq!(max("type=local,dest=/c,cache-mounts=false"), Ok(None));
        assert_eq!(
            max("type=local,dest=/c,cache-mounts=true"),
            Ok(Some(1 << 30)),
            "1 GiB by default"
        );
        for (size, bytes) in [("512MiB", 512 << 20), ("1GB", 1 << 30), ("4096", 4096)] {
            let spec = format!(
                "type=registry,ref=r.io/a:c,cache-mounts=true,cache-mounts-max-size={size}"
            );
            assert_eq!(max(&spec), Ok(Some(bytes)), "{spec}");
        }
        assert!(matches!(
            max("type=local,dest=/c,cache-mounts=true,cache-mounts-max-size=lots"),
            Err(CacheFlagError::BadValue { .. })
        ));
        assert!(matches!(
            max("type=local,dest=/c,cache-mounts-max-size=1GB"),
            Err(CacheFlagError::MaxSizeWithoutMounts(_))
        ));
        assert_eq!(
            parse_cache_from("type=local,src=/c,cache-mounts=true").unwrap(),
            CacheFrom::Local {
                src: "/c".into(),
                cache_mounts: true
            }
        );
        assert!(matches!(
            parse_cache_from("type=registry,ref=r/a,cache-mounts=maybe"),
            Err(CacheFlagError::BadValue { .. })
        ));
        assert!(matches!(
            parse_cache_from("type=local,src=/c,cache-mounts-max-size=1GB"),
            Err(CacheFlagError::UnknownKey { .. })
        ));
    }

    #[test]
    fn other_types_are_not_supported_yet() {
        for spec in ["type=gha", "type=s3,bucket=b"] {
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
            ("type=registry", "needs ref=REF"),
            ("type=registry,ref=UPPER/x", "ref=\"UPPER/x\""),
            ("type=registry,ref=r/a,dest=/c", "unknown key \"dest\""),
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
