//! Docker image references, normalised the way Docker does it
//! (`busybox` → `docker.io/library/busybox:latest`).

use std::fmt;
use std::str::FromStr;

use crate::Digest;

/// The registry a reference without a registry part points to.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A fully normalised image reference. Invariant: `registry` and `repository` are never empty;
/// at least one of `tag`/`digest` is set (a bare name gets the tag `latest`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageRefError {
    #[error("invalid reference format: {0:?} is empty")]
    Empty(String),
    #[error("invalid reference format: repository name in {0:?} must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format: {0:?}")]
    Format(String),
    #[error("invalid reference format: bad digest in {0:?}")]
    Digest(String),
}

impl ImageRef {
    /// Parses and normalises a reference as `docker pull` would.
    pub fn parse(s: &str) -> Result<Self, ImageRefError> {
        if s.is_empty() {
            return Err(ImageRefError::Empty(s.to_string()));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (
                n,
                Some(
                    d.parse::<Digest>()
                        .map_err(|_| ImageRefError::Digest(s.to_string()))?,
                ),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let split = last_slash + i;
                (&name_tag[..split], Some(name_tag[split + 1..].to_string()))
            }
            None => (name_tag, None),
        };
        if let Some(t) = &tag {
            let valid = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                return Err(ImageRefError::Format(s.to_string()));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        if repository.is_empty() {
            return Err(ImageRefError::Empty(s.to_string()));
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ImageRefError::Uppercase(s.to_string()));
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
                })
                && c.chars()
                    .next()
                    .is_some_and(|ch| ch.is_ascii_alphanumeric())
                && c.chars()
                    .last()
                    .is_some_and(|ch| ch.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component_ok) {
            return Err(ImageRefError::Format(s.to_string()));
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker shows: `busybox:latest`, `example.com/x/y:1`.
    pub fn familiar(&self) -> String {
        let mut name = if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        };
        if let Some(t) = &self.tag {
            name.push(':');
            name.push_str(t);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(&d.to_string());
        }
        name
    }

    /// The tag or digest as the registry API's `<reference>` path element.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({self})")
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

serde_as_text!(ImageRef);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let cases = [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            (
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
            ),
            (
                "127.0.0.1:5000/a/b",
                "127.0.0.1:5000/a/b:latest",
                "127.0.0.1:5000/a/b:latest",
            ),
            (
                "localhost/app",
                "localhost/app:latest",
                "localhost/app:latest",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = ImageRef::parse(input).unwrap();
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
        }
    }

    #[test]
    fn digest_reference() {
        let d = Digest::of(b"x");
        let r = ImageRef::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.reference(), d.to_string());
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "Busybox", "a:", "a:-x", "a//b", "a@sha256:12", "-a"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
