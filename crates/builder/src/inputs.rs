//! The Dockerfile and the context, resolved from their specs as `docker build` resolves
//! them: a directory (its Dockerfile read now, the tree walked later and only if a step reads
//! it, see [`crate::context`]), standard input (a Dockerfile, or a context archive holding
//! it), a git URL (checked out) or an http(s) URL (a context archive, or a plain Dockerfile
//! with an empty context); both through the build's `RemoteSource`.
//!
//! With a remote context or an archive, `-f NAME` is relative to the context root (as in
//! Docker); with a directory, to the working directory.

use std::io::Read;
use std::path::{Path, PathBuf};

use rbuild_context::{BuildContext, ContextError};
use rbuild_solver::ports::RemoteSource;
use rbuild_types::Privileges;

use crate::config::{ContextSpec, DockerfileSpec};
use crate::context::Context;

/// The Dockerfile as read, kept for error reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerfileSource {
    /// How reports name it (its path, `Dockerfile` when read from standard input).
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Why the Dockerfile or the context could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("reading the Dockerfile from standard input: {0}")]
    ReadStdin(#[source] std::io::Error),
    #[error("standard input is needed (for `-`) but none was given")]
    NoStdin,
    #[error("with a Dockerfile on standard input (`-`), -f cannot name another file")]
    FileWithStdinDockerfile,
    #[error("the context archive on standard input has no Dockerfile {name:?}: {source}")]
    NoDockerfileInArchive {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("build context from standard input: {0}")]
    StdinArchive(#[source] ContextError),
    #[error("unable to prepare context: path {0:?} not found")]
    ContextNotFound(String),
    #[error("failed to read dockerfile {}: {source}", path.display())]
    ReadDockerfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("an empty context has no Dockerfile: give it as bytes or a path")]
    NoDockerfile,
    /// Cloning or downloading a remote context failed.
    #[error("unable to prepare context: {0}")]
    Remote(#[source] ContextError),
    #[error("unable to prepare context {url}: {source}")]
    UrlArchive {
        url: String,
        #[source]
        source: ContextError,
    },
    #[error("{url} is a Dockerfile, not a context archive: -f cannot be used with it")]
    UrlIsDockerfile { url: String },
    #[error("context {origin} has no Dockerfile {name:?}: {source}")]
    NoDockerfileInContext {
        origin: String,
        name: String,
        #[source]
        source: std::io::Error,
    },
}

impl InputError {
    /// Whether the request named something that is not there (exit status 2), rather than
    /// reading or fetching failing.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            InputError::StdinArchive(_) | InputError::Remote(_) | InputError::UrlArchive { .. }
        )
    }
}

/// The Dockerfile and the (maybe unopened) context of a build.
pub(crate) struct Inputs {
    pub dockerfile: DockerfileSource,
    pub context: Context,
}

/// Reads the Dockerfile and prepares the context; `stdin` is read at most once, only when a
/// spec says so. `stat_cache` names the stat cache file of a context directory; `remote`
/// fetches git and URL contexts; a context archive is unpacked with `privileges` (rbuild's).
pub(crate) fn open(
    dockerfile: &DockerfileSpec,
    context: &ContextSpec,
    stdin: &mut Option<Box<dyn Read>>,
    remote: &dyn RemoteSource,
    privileges: &Privileges,
    stat_cache: impl Fn(&Path) -> PathBuf,
) -> Result<Inputs, InputError> {
    match context {
        ContextSpec::Stdin => from_stdin(dockerfile, read_all(stdin)?, privileges),
        ContextSpec::Empty => {
            let dockerfile = match dockerfile {
                DockerfileSpec::Default => return Err(InputError::NoDockerfile),
                DockerfileSpec::Named(path) => read_path(Path::new(path))?,
                given => given_bytes(given, stdin)?,
            };
            Ok(Inputs {
                dockerfile,
                context: Context::Ready(Box::new(BuildContext::empty())),
            })
        }
        ContextSpec::Dir(dir) => {
            if !dir.is_dir() {
                return Err(InputError::ContextNotFound(dir.display().to_string()));
            }
            let (dockerfile, path) = match dockerfile {
                DockerfileSpec::Default => {
                    let path = dir.join("Dockerfile");
                    (read_path(&path)?, Some(path))
                }
                DockerfileSpec::Named(name) => {
                    let path = PathBuf::from(name);
                    (read_path(&path)?, Some(path))
                }
                given => (given_bytes(given, stdin)?, None),
            };
            Ok(Inputs {
                dockerfile,
                context: Context::Dir {
                    stat_cache: stat_cache(dir),
                    dir: dir.clone(),
                    dockerfile: path,
                },
            })
        }
        ContextSpec::Git { url, spec } => {
            let name = inside_name(dockerfile);
            let given = is_given(dockerfile);
            let ctx = BuildContext::from_git(remote, spec, (!given).then_some(name))
                .map_err(InputError::Remote)?;
            let df = in_context(&ctx, dockerfile, name, url, stdin)?;
            Ok(ready(df, ctx))
        }
        ContextSpec::Url(url) => {
            let bytes = rbuild_context::fetch_url(remote, url).map_err(InputError::Remote)?;
            if rbuild_context::detect_archive(&bytes).is_none() {
                // Not an archive: the URL is the Dockerfile itself, the context is empty.
                if *dockerfile != DockerfileSpec::Default {
                    return Err(InputError::UrlIsDockerfile { url: url.clone() });
                }
                let df = DockerfileSource {
                    name: url.clone(),
                    bytes,
                };
                return Ok(ready(df, BuildContext::empty()));
            }
            let name = inside_name(dockerfile);
            let given = is_given(dockerfile);
            let inside = (!given).then_some(name);
            let ctx = BuildContext::from_tar(std::io::Cursor::new(bytes), inside, privileges)
                .map_err(|source| InputError::UrlArchive {
                    url: url.clone(),
                    source,
                })?;
            let df = in_context(&ctx, dockerfile, name, url, stdin)?;
            Ok(ready(df, ctx))
        }
    }
}

fn ready(dockerfile: DockerfileSource, ctx: BuildContext) -> Inputs {
    Inputs {
        dockerfile,
        context: Context::Ready(Box::new(ctx)),
    }
}

/// `-`: a context archive (the whole context, Dockerfile included), else the Dockerfile.
fn from_stdin(
    dockerfile: &DockerfileSpec,
    bytes: Vec<u8>,
    privileges: &Privileges,
) -> Result<Inputs, InputError> {
    if rbuild_context::detect_archive(&bytes).is_some() {
        let name = match dockerfile {
            DockerfileSpec::Named(name) => name.clone(),
            DockerfileSpec::Stdin => "-".to_string(),
            DockerfileSpec::Default | DockerfileSpec::Bytes { .. } => "Dockerfile".to_string(),
        };
        let ctx = BuildContext::from_tar(std::io::Cursor::new(bytes), Some(&name), privileges)
            .map_err(InputError::StdinArchive)?;
        let df = match dockerfile {
            DockerfileSpec::Bytes { name, bytes } => DockerfileSource {
                name: name.clone(),
                bytes: bytes.clone(),
            },
            _ => {
                let root = ctx.root().map(Path::to_path_buf).unwrap_or_default();
                let path = root.join(name.trim_start_matches('/'));
                let bytes =
                    std::fs::read(&path).map_err(|source| InputError::NoDockerfileInArchive {
                        name: name.clone(),
                        source,
                    })?;
                DockerfileSource { name, bytes }
            }
        };
        return Ok(ready(df, ctx));
    }
    if matches!(dockerfile, DockerfileSpec::Named(_)) {
        return Err(InputError::FileWithStdinDockerfile);
    }
    let df = DockerfileSource {
        name: "Dockerfile".into(),
        bytes,
    };
    Ok(ready(df, BuildContext::empty()))
}

/// The Dockerfile's path inside a remote context.
fn inside_name(dockerfile: &DockerfileSpec) -> &str {
    match dockerfile {
        DockerfileSpec::Named(name) => name,
        _ => "Dockerfile",
    }
}

/// Whether the Dockerfile is given (standard input or bytes) rather than in the context.
fn is_given(dockerfile: &DockerfileSpec) -> bool {
    matches!(
        dockerfile,
        DockerfileSpec::Stdin | DockerfileSpec::Bytes { .. }
    )
}

/// The Dockerfile of a remote context: given, or `name` inside the unpacked context.
fn in_context(
    ctx: &BuildContext,
    dockerfile: &DockerfileSpec,
    name: &str,
    origin: &str,
    stdin: &mut Option<Box<dyn Read>>,
) -> Result<DockerfileSource, InputError> {
    if is_given(dockerfile) {
        return given_bytes(dockerfile, stdin);
    }
    let root = ctx.root().unwrap_or(Path::new("."));
    let path = root.join(name.trim_start_matches('/'));
    let bytes = std::fs::read(&path).map_err(|source| InputError::NoDockerfileInContext {
        origin: origin.to_string(),
        name: name.to_string(),
        source,
    })?;
    Ok(DockerfileSource {
        name: name.to_string(),
        bytes,
    })
}

/// A Dockerfile given as bytes or on standard input (named `Dockerfile` then).
fn given_bytes(
    dockerfile: &DockerfileSpec,
    stdin: &mut Option<Box<dyn Read>>,
) -> Result<DockerfileSource, InputError> {
    match dockerfile {
        DockerfileSpec::Bytes { name, bytes } => Ok(DockerfileSource {
            name: name.clone(),
            bytes: bytes.clone(),
        }),
        _ => Ok(DockerfileSource {
            name: "Dockerfile".into(),
            bytes: read_all(stdin)?,
        }),
    }
}

fn read_path(path: &Path) -> Result<DockerfileSource, InputError> {
    let bytes = std::fs::read(path).map_err(|source| InputError::ReadDockerfile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(DockerfileSource {
        name: path.display().to_string(),
        bytes,
    })
}

/// Reads all of standard input (once: it is taken).
fn read_all(stdin: &mut Option<Box<dyn Read>>) -> Result<Vec<u8>, InputError> {
    let mut reader = stdin.take().ok_or(InputError::NoStdin)?;
    let mut buf = Vec::new();
    reader
        .read_to_end(&mut buf)
        .map_err(InputError::ReadStdin)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use rbuild_test_support::fakes::NoRemote;

    use super::*;

    fn stdin(bytes: &[u8]) -> Option<Box<dyn Read>> {
        Some(Box::new(std::io::Cursor::new(bytes.to_vec())))
    }

    fn no_cache(_: &Path) -> PathBuf {
        PathBuf::from("/nonexistent/stat-cache")
    }

    #[test]
    fn a_dockerfile_on_stdin_has_an_empty_context() {
        let mut input = stdin(b"FROM scratch\n");
        let got = open(
            &DockerfileSpec::Default,
            &ContextSpec::Stdin,
            &mut input,
            &NoRemote,
            &rbuild_sandbox::detect_privileges(),
            no_cache,
        )
        .expect("opens");
        assert_eq!(got.dockerfile.name, "Dockerfile");
        assert_eq!(got.dockerfile.bytes, b"FROM scratch\n");
        assert!(matches!(got.context, Context::Ready(c) if c.is_empty()));
        // -f naming another file is refused; standard input is read once only.
        let e = open(
            &DockerfileSpec::Named("x".into()),
            &ContextSpec::Stdin,
            &mut stdin(b"FROM scratch\n"),
            &NoRemote,
            &rbuild_sandbox::detect_privileges(),
            no_cache,
        )
        .err()
        .expect("refused");
        assert!(matches!(e, InputError::FileWithStdinDockerfile), "{e}");
        assert!(matches!(
            open(
                &DockerfileSpec::Default,
                &ContextSpec::Stdin,
                &mut input,
                &NoRemote,
                &rbuild_sandbox::detect_privileges(),
                no_cache
            ),
            Err(InputError::NoStdin)
        ));
    }

    #[test]
    fn a_directory_is_not_walked_when_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").expect("write");
        let got = open(
            &DockerfileSpec::Default,
            &ContextSpec::Dir(dir.path().to_path_buf()),
            &mut None,
            &NoRemote,
            &rbuild_sandbox::detect_privileges(),
            no_cache,
        )
        .expect("opens");
        assert!(got.dockerfile.name.ends_with("/Dockerfile"));
        assert!(matches!(got.context, Context::Dir { .. }));
        let e = open(
            &DockerfileSpec::Default,
            &ContextSpec::Dir(dir.path().join("missing")),
            &mut None,
            &NoRemote,
            &rbuild_sandbox::detect_privileges(),
            no_cache,
        )
        .err()
        .expect("missing");
        assert!(
            e.is_usage() && e.to_string().contains("unable to prepare context"),
            "{e}"
        );
    }
}
