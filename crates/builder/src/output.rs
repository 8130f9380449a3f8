//! `-o/--output` specs: `type=oci,dest=out.tar`, `type=local,dest=dir`,
//! `type=image,name=…,push=true`, with BuildKit's layer options (`compression=`, …).

use std::path::PathBuf;

use rbuild_oci::compress::{CompressSettings, Compression};
use rbuild_oci::images::DistOptions;

/// Where an archive output goes: a file, or standard output (`dest=-`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    Path(PathBuf),
}

impl From<&str> for Dest {
    fn from(dest: &str) -> Dest {
        match dest {
            "-" => Dest::Stdout,
            path => Dest::Path(PathBuf::from(path)),
        }
    }
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Stdout => f.write_str("standard output"),
            Dest::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Where a build's result goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The local image store (the default), under the build's tags and `name=` (comma-free);
    /// `push=true` also pushes every name to its registry.
    Image {
        names: Vec<String>,
        push: bool,
        layers: LayerOptions,
    },
    /// OCI image layout, as a tar (default) or a directory (`tar=false`; never stdout).
    /// `name=` names the image in it (as the build's tags do), as in BuildKit's exporter.
    Oci {
        dest: Dest,
        tar: bool,
        layers: LayerOptions,
        names: Vec<String>,
    },
    /// A tar `docker load` accepts; `name=` gives its `RepoTags` (as the build's tags do).
    Docker {
        dest: Dest,
        layers: LayerOptions,
        names: Vec<String>,
    },
    /// The final root filesystem, as a directory.
    Local { dest: PathBuf },
    /// The final root filesystem, as one tar.
    Tar { dest: Dest },
}

impl Output {
    /// Whether it writes to standard output.
    pub fn to_stdout(&self) -> bool {
        matches!(
            self,
            Output::Oci {
                dest: Dest::Stdout,
                ..
            } | Output::Docker {
                dest: Dest::Stdout,
                ..
            } | Output::Tar { dest: Dest::Stdout }
        )
    }

    /// The exporter's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Output::Image { .. } => "image",
            Output::Oci { .. } => "oci",
            Output::Docker { .. } => "docker",
            Output::Local { .. } => "local",
            Output::Tar { .. } => "tar",
        }
    }
}

/// How layers are written for an image output: `compression=gzip|zstd|uncompressed`,
/// `compression-level=N`, `oci-mediatypes=true|false`. `None` means the output's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerOptions {
    pub compression: Option<Compression>,
    pub level: Option<i32>,
    pub oci_media_types: Option<bool>,
}

impl LayerOptions {
    /// The distribution options these stand for (defaults: gzip, OCI media types).
    pub fn dist(&self) -> DistOptions {
        DistOptions {
            compress: CompressSettings {
                compression: self.compression.unwrap_or(Compression::Gzip),
                level: self.level,
                threads: 0,
            },
            oci_media_types: self.oci_media_types.unwrap_or(true),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutputError {
    #[error("invalid output {0:?}: expected comma-separated key=value pairs")]
    Syntax(String),
    #[error("invalid output {0:?}: missing type=")]
    MissingType(String),
    #[error("invalid output {spec:?}: unknown type {kind:?} (expected image, oci, docker, local or tar)")]
    UnknownType { spec: String, kind: String },
    #[error("invalid output {0:?}: dest= is required for this type")]
    MissingDest(String),
    #[error("invalid output {spec:?}: unknown option {key:?}")]
    UnknownKey { spec: String, key: String },
    #[error("invalid output {spec:?}: dest cannot be standard output for a directory (the {kind} exporter)")]
    DirToStdout { spec: String, kind: &'static str },
    #[error("invalid output {spec:?}: invalid value {value:?} for {key}")]
    BadValue {
        spec: String,
        key: String,
        value: String,
    },
}

impl Output {
    pub fn parse(spec: &str) -> Result<Output, OutputError> {
        // `-o dir` is docker's shorthand for `type=local,dest=dir`, and `-o -` for
        // `type=tar,dest=-` (buildx).
        if spec == "-" {
            return Ok(Output::Tar { dest: Dest::Stdout });
        }
        if !spec.contains('=') {
            return Ok(Output::Local {
                dest: PathBuf::from(spec),
            });
        }
        let mut kind = None;
        let mut dest = None;
        let mut tar = true;
        let mut names = Vec::new();
        let mut push = false;
        let mut layers = LayerOptions::default();
        for part in spec.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| OutputError::Syntax(spec.into()))?;
            let (k, v) = (k.trim(), v.trim());
            let bad = || OutputError::BadValue {
                spec: spec.into(),
                key: k.into(),
                value: v.into(),
            };
            match k {
                "type" => kind = Some(v.to_string()),
                "dest" => dest = Some(v.to_string()),
                "tar" => tar = parse_bool(v).ok_or_else(bad)?,
                "name" => names.push(v.to_string()),
                "push" => push = parse_bool(v).ok_or_else(bad)?,
                "compression" => layers.compression = Some(parse_compression(v).ok_or_else(bad)?),
                "compression-level" => layers.level = Some(parse_level(v).ok_or_else(bad)?),
                "oci-mediatypes" => layers.oci_media_types = Some(parse_bool(v).ok_or_else(bad)?),
                // Accepted for BuildKit compatibility, without effect here.
                "force-compression" | "store" | "unpack" => {}
                other => {
                    return Err(OutputError::UnknownKey {
                        spec: spec.into(),
                        key: other.into(),
                    })
                }
            }
        }
        let kind = kind.ok_or_else(|| OutputError::MissingType(spec.into()))?;
        let need_dest = || {
            dest.as_deref()
                .map(Dest::from)
                .ok_or_else(|| OutputError::MissingDest(spec.into()))
        };
        // A directory output cannot go to standard output (buildx says the same).
        let need_dir = |kind: &'static str| match need_dest()? {
            Dest::Path(p) => Ok(p),
            Dest::Stdout => Err(OutputError::DirToStdout {
                spec: spec.into(),
                kind,
            }),
        };
        Ok(match kind.as_str() {
            "image" | "registry" => Output::Image {
                names,
                push: push || kind == "registry",
                layers,
            },
            "oci" => Output::Oci {
                dest: if tar {
                    need_dest()?
                } else {
                    Dest::Path(need_dir("oci")?)
                },
                tar,
                layers,
                names,
            },
            "docker" => Output::Docker {
                dest: need_dest()?,
                layers,
                names,
            },
            "local" => Output::Local {
                dest: need_dir("local")?,
            },
            "tar" => Output::Tar { dest: need_dest()? },
            _ => {
                return Err(OutputError::UnknownType {
                    spec: spec.into(),
                    kind,
                })
            }
        })
    }
}

/// `compression=gzip|zstd|uncompressed` (outputs and `--cache-to type=registry`).
pub fn parse_compression(v: &str) -> Option<Compression> {
    match v {
        "gzip" => Some(Compression::Gzip),
        "zstd" => Some(Compression::Zstd),
        "uncompressed" => Some(Compression::None),
        _ => None,
    }
}

/// `compression-level=N`, 0 to 22 (zstd's range; gzip clamps to 9).
pub fn parse_level(v: &str) -> Option<i32> {
    v.parse().ok().filter(|l| (0..=22).contains(l))
}

/// `true|1` or `false|0`, as BuildKit's options take them.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            Output::parse("type=oci,dest=out.tar").unwrap(),
            Output::Oci {
                dest: "out.tar".into(),
                tar: true,
                layers: LayerOptions::default(),
                names: Vec::new(),
            }
        );
        assert_eq!(
            Output::parse("type=oci,dest=d,tar=false").unwrap(),
            Output::Oci {
                dest: "d".into(),
                tar: false,
                layers: LayerOptions::default(),
                names: Vec::new(),
            }
        );
        assert_eq!(
            Output::parse(
                "type=docker,dest=x,compression=zstd,compression-level=9,oci-mediatypes=false"
            )
            .unwrap(),
            Output::Docker {
                dest: "x".into(),
                layers: LayerOptions {
                    compression: Some(Compression::Zstd),
                    level: Some(9),
                    oci_media_types: Some(false),
                },
                names: Vec::new(),
            }
        );
        assert_eq!(
            Output::parse("type=docker,dest=x,name=app:1,name=app:latest").unwrap(),
            Output::Docker {
                dest: "x".into(),
                layers: LayerOptions::default(),
                names: vec!["app:1".into(), "app:latest".into()],
            }
        );
        assert_eq!(
            Output::parse("type=image,name=reg:5000/a:1,push=true").unwrap(),
            Output::Image {
                names: vec!["reg:5000/a:1".into()],
                push: true,
                layers: LayerOptions::default(),
            }
        );
        assert!(matches!(
            Output::parse("type=oci,dest=d,compression=lz4"),
            Err(OutputError::BadValue { .. })
        ));
        assert_eq!(
            Output::parse("out").unwrap(),
            Output::Local { dest: "out".into() }
        );
        assert!(matches!(
            Output::parse("type=oci"),
            Err(OutputError::MissingDest(_))
        ));
        assert!(matches!(
            Output::parse("type=zip,dest=x"),
            Err(OutputError::UnknownType { .. })
        ));
        assert!(matches!(
            Output::parse("dest=x"),
            Err(OutputError::MissingType(_))
        ));
    }

    #[test]
    fn dest_dash_is_standard_output_for_archives_only() {
        for spec in ["type=oci,dest=-", "type=docker,dest=-", "type=tar,dest=-"] {
            let o = Output::parse(spec).unwrap();
            assert!(o.to_stdout(), "{spec}");
        }
        assert!(!Output::parse("type=oci,dest=o.tar").unwrap().to_stdout());
        assert_eq!(
            Output::parse("-").unwrap(),
            Output::Tar { dest: Dest::Stdout }
        );
        assert_eq!(
            Output::parse("type=tar,dest=-").unwrap(),
            Output::Tar { dest: Dest::Stdout }
        );
        for spec in ["type=local,dest=-", "type=oci,dest=-,tar=false"] {
            assert!(
                matches!(Output::parse(spec), Err(OutputError::DirToStdout { .. })),
                "{spec}"
            );
        }
        // `./-` is a file named `-`.
        assert_eq!(
            Output::parse("type=tar,dest=./-").unwrap(),
            Output::Tar {
                dest: Dest::Path("./-".into())
            }
        );
    }
}
