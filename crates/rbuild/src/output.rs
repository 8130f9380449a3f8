//! `-o/--output` specs: `type=oci,dest=out.tar`, `type=local,dest=dir`, ...

use std::path::PathBuf;

/// Where a build's result goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The local image store (the default), under the build's tags.
    Image,
    /// OCI image layout, as a tar (default) or a directory (`tar=false`).
    Oci { dest: PathBuf, tar: bool },
    /// A tar `docker load` accepts.
    Docker { dest: PathBuf },
    /// The final root filesystem, as a directory.
    Local { dest: PathBuf },
    /// The final root filesystem, as one tar.
    Tar { dest: PathBuf },
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
}

impl Output {
    pub fn parse(spec: &str) -> Result<Output, OutputError> {
        // `-o dir` is docker's shorthand for `type=local,dest=dir`.
        if !spec.contains('=') {
            return Ok(Output::Local {
                dest: PathBuf::from(spec),
            });
        }
        let mut kind = None;
        let mut dest = None;
        let mut tar = true;
        for part in spec.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| OutputError::Syntax(spec.into()))?;
            match k.trim() {
                "type" => kind = Some(v.trim().to_string()),
                "dest" => dest = Some(PathBuf::from(v.trim())),
                "tar" => tar = v.trim() != "false",
                // Accepted for compatibility; the local store keeps layers uncompressed and
                // archives use gzip for now.
                "name" | "push" | "compression" | "compression-level" | "oci-mediatypes" => {}
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
            dest.clone()
                .ok_or_else(|| OutputError::MissingDest(spec.into()))
        };
        Ok(match kind.as_str() {
            "image" => Output::Image,
            "oci" => Output::Oci {
                dest: need_dest()?,
                tar,
            },
            "docker" => Output::Docker { dest: need_dest()? },
            "local" => Output::Local { dest: need_dest()? },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            Output::parse("type=oci,dest=out.tar").unwrap(),
            Output::Oci {
                dest: "out.tar".into(),
                tar: true
            }
        );
        assert_eq!(
            Output::parse("type=oci,dest=d,tar=false").unwrap(),
            Output::Oci {
                dest: "d".into(),
                tar: false
            }
        );
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
}
