//! Named contexts (`--build-context NAME=VALUE`), as buildx takes them: what a VALUE names
//! ([`NamedSpec::parse`], checked before anything is built), what the frontend is told each
//! used one is ([`NamedSpec::kind`]), and opening a filesystem context when the graph reads
//! it ([`open`]: walked, cloned or downloaded only then).
//!
//! VALUE is, in buildx's order: `docker-image://REF` (an image, as `FROM REF`);
//! `oci-layout://PATH[:TAG|@DIGEST]` (an image of an OCI layout on disk); a git URL (a git
//! context, which may be a local repository the user named); an http(s) URL (one file
//! named `context`, downloaded by the graph as `ADD <url>` is: BuildKit's named URL context); else a local directory, which must exist. A named
//! directory honours its own `.dockerignore`, never the main context's (BuildKit reads
//! `.dockerignore` at the root of each named local context).

use std::path::{Path, PathBuf};

use rbuild_context::{BuildContext, ContextError, ContextSource, GitSpec};
use rbuild_frontend::lower::{user_context_key, ContextNameError};
use rbuild_oci::images::LayoutSelector;
use rbuild_solver::ports::RemoteSource;
use rbuild_types::{Digest, ImageRef, ImageRefError};

/// What a named context's VALUE names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedSpec {
    /// `docker-image://REF`.
    Image(ImageRef),
    /// `oci-layout://PATH[:TAG|@DIGEST]`.
    OciLayout {
        dir: PathBuf,
        selector: LayoutSelector,
    },
    /// A git URL (`URL[#ref][:subdir]`).
    Git { url: String, spec: GitSpec },
    /// An http(s) URL.
    Url(String),
    /// A local directory.
    Dir(PathBuf),
}

/// A `--build-context` item that cannot be used (a usage error).
#[derive(Debug, thiserror::Error)]
pub enum NamedSpecError {
    #[error("--build-context {item:?}: expected NAME=VALUE")]
    NotKeyValue { item: String },
    #[error("--build-context {item:?}: {source}")]
    Name {
        item: String,
        #[source]
        source: ContextNameError,
    },
    #[error("--build-context {item:?}: invalid image reference: {source}")]
    Image {
        item: String,
        #[source]
        source: ImageRefError,
    },
    #[error("--build-context {item:?}: {problem}")]
    OciLayout { item: String, problem: String },
    #[error("--build-context {item:?}: {source}")]
    Source {
        item: String,
        #[source]
        source: ContextError,
    },
    #[error("--build-context {item:?}: {} is not a directory", path.display())]
    NotADirectory { item: String, path: PathBuf },
    #[error("--build-context: context {name:?} is given twice")]
    Twice { name: String },
}

impl NamedSpec {
    /// Parses one `NAME=VALUE`; returns the name's key (see
    /// [`context_key`](rbuild_frontend::lower::context_key)) and what VALUE names.
    pub fn parse(item: &str) -> Result<(String, NamedSpec), NamedSpecError> {
        let Some((name, value)) = item
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        else {
            return Err(NamedSpecError::NotKeyValue {
                item: item.to_string(),
            });
        };
        let key = user_context_key(name).map_err(|source| NamedSpecError::Name {
            item: item.to_string(),
            source,
        })?;
        let spec = if let Some(reference) = value.strip_prefix("docker-image://") {
            NamedSpec::Image(ImageRef::parse(reference).map_err(|source| {
                NamedSpecError::Image {
                    item: item.to_string(),
                    source,
                }
            })?)
        } else if let Some(layout) = value.strip_prefix("oci-layout://") {
            oci_layout(layout).map_err(|problem| NamedSpecError::OciLayout {
                item: item.to_string(),
                problem,
            })?
        } else {
            let source =
                ContextSource::classify(value).map_err(|source| NamedSpecError::Source {
                    item: item.to_string(),
                    source,
                })?;
            match source {
                ContextSource::Git(spec) => NamedSpec::Git {
                    url: value.to_string(),
                    spec,
                },
                ContextSource::Url(url) => NamedSpec::Url(url),
                ContextSource::Dir(dir) if dir.is_dir() => NamedSpec::Dir(dir),
                ContextSource::Dir(path) => {
                    return Err(NamedSpecError::NotADirectory {
                        item: item.to_string(),
                        path,
                    })
                }
                // `-` is a directory name here, not standard input.
                ContextSource::Stdin => {
                    return Err(NamedSpecError::NotADirectory {
                        item: item.to_string(),
                        path: PathBuf::from(value),
                    })
                }
            }
        };
        Ok((key, spec))
    }

    /// Parses every item, refusing a name given twice.
    pub fn parse_all(
        items: &[String],
    ) -> Result<std::collections::BTreeMap<String, NamedSpec>, NamedSpecError> {
        let mut out = std::collections::BTreeMap::new();
        for item in items {
            let (key, spec) = NamedSpec::parse(item)?;
            if out.insert(key.clone(), spec).is_some() {
                return Err(NamedSpecError::Twice { name: key });
            }
        }
        Ok(out)
    }
}

/// `PATH[:TAG|@DIGEST]` of an `oci-layout://` value (a tag is what follows the last `:` of
/// the last path component).
fn oci_layout(value: &str) -> Result<NamedSpec, String> {
    let (path, selector) = match value.rsplit_once('@') {
        Some((path, digest)) => {
            let digest: Digest = digest
                .parse()
                .map_err(|e| format!("invalid digest {digest:?}: {e}"))?;
            (path, LayoutSelector::Digest(digest))
        }
        None => match value.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
            Some((path, tag)) if !tag.is_empty() => (path, LayoutSelector::Tag(tag.to_string())),
            _ => (value, LayoutSelector::Default),
        },
    };
    if path.is_empty() {
        return Err("the layout path is empty".to_string());
    }
    let dir = PathBuf::from(path);
    if !dir.join("index.json").is_file() {
        return Err(format!(
            "{} is not an OCI layout (no index.json)",
            dir.display()
        ));
    }
    Ok(NamedSpec::OciLayout { dir, selector })
}

/// Opens the filesystem context `spec` (a directory or git context; `None` for images and
/// URLs), now that a step reads it. `stat_cache` names a directory's stat cache file.
pub(crate) fn open(
    spec: &NamedSpec,
    remote: &dyn RemoteSource,
    stat_cache: impl Fn(&Path) -> PathBuf,
) -> Option<Result<BuildContext, ContextError>> {
    Some(match spec {
        // A URL is downloaded by the graph's `Http` vertex, as `ADD <url>`.
        NamedSpec::Image(_) | NamedSpec::OciLayout { .. } | NamedSpec::Url(_) => return None,
        NamedSpec::Dir(dir) => {
            BuildContext::from_dir(dir, None).map(|c| c.with_stat_cache(&stat_cache(dir)))
        }
        NamedSpec::Git { spec, .. } => BuildContext::from_git_tree(remote, spec),
    })
}

impl NamedSpec {
    /// How errors name the context's source.
    pub fn origin(&self) -> String {
        match self {
            NamedSpec::Image(r) => format!("docker-image://{r}"),
            NamedSpec::OciLayout { dir, .. } => format!("oci-layout://{}", dir.display()),
            NamedSpec::Git { url, .. } => url.clone(),
            NamedSpec::Url(url) => url.clone(),
            NamedSpec::Dir(dir) => dir.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_classified_as_buildx_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        assert_eq!(
            NamedSpec::parse(&format!("src={d}")).expect("dir").1,
            NamedSpec::Dir(dir.path().to_path_buf())
        );
        let (key, spec) =
            NamedSpec::parse("alpine:latest=docker-image://busybox:1.36").expect("image");
        assert_eq!(key, "alpine");
        assert_eq!(
            spec,
            NamedSpec::Image(ImageRef::parse("busybox:1.36").expect("ref"))
        );
        assert!(matches!(
            NamedSpec::parse("g=https://example.com/r.git#main")
                .expect("git")
                .1,
            NamedSpec::Git { .. }
        ));
        assert_eq!(
            NamedSpec::parse("u=https://example.com/ctx.tar")
                .expect("url")
                .1,
            NamedSpec::Url("https://example.com/ctx.tar".into())
        );
        std::fs::write(dir.path().join("index.json"), "{}").expect("index");
        assert_eq!(
            NamedSpec::parse(&format!("o=oci-layout://{d}:v1"))
                .expect("layout")
                .1,
            NamedSpec::OciLayout {
                dir: dir.path().to_path_buf(),
                selector: LayoutSelector::Tag("v1".into())
            }
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(
            NamedSpec::parse(&format!("o=oci-layout://{d}@{digest}"))
                .expect("layout")
                .1,
            NamedSpec::OciLayout {
                selector: LayoutSelector::Digest(_),
                ..
            }
        ));
    }

    #[test]
    fn bad_values_name_the_flag() {
        for item in [
            "novalue",
            "=x",
            "x=",
            "Bad Name=.",
            "scratch=.",
            "i=docker-image://Bad Ref",
            "o=oci-layout:///does/not/exist",
            "d=/does/not/exist",
        ] {
            let e = NamedSpec::parse(item).expect_err(item);
            assert!(e.to_string().starts_with("--build-context"), "{e}");
        }
        let twice = ["a=.".to_string(), "a:latest=.".to_string()];
        assert!(matches!(
            NamedSpec::parse_all(&twice),
            Err(NamedSpecError::Twice { .. })
        ));
    }
}
