//! Target platforms (`linux/amd64`, `linux/arm/v7`), as OCI and `--platform` spell them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An OS/architecture/variant triple, normalised the way containerd does (`x86_64` → `amd64`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64")]
pub struct PlatformError(pub String);

impl Platform {
    /// The platform this binary runs on.
    pub fn host() -> Self {
        Platform {
            os: "linux".into(),
            architecture: normalise_arch(std::env::consts::ARCH).into(),
            variant: None,
        }
    }
}

fn normalise_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" | "x86" => "386",
        other => other,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || PlatformError(s.to_string());
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform {
                os: os.to_lowercase(),
                architecture: normalise_arch(&arch.to_lowercase()).into(),
                variant: None,
            }),
            [os, arch, variant] => Ok(Platform {
                os: os.to_lowercase(),
                architecture: normalise_arch(&arch.to_lowercase()).into(),
                variant: Some(variant.to_lowercase()),
            }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let p: Platform = "linux/x86_64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//".parse::<Platform>().is_err());
    }
}
