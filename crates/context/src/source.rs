//! What the `CONTEXT` argument of `rbuild build` names, classified as `docker build` does:
//! `-` (stdin), an existing directory, a git URL, an http(s) URL to a tarball (or Dockerfile).
//!
//! Git URLs follow Docker's rule: `git://…`, `git@…`, `github.com/…`, or an `http(s)://` URL
//! whose path ends in `.git` (before an optional `#fragment`); rbuild also takes `file://…`
//! as a git repository on this machine. The fragment is `#ref:subdir`, both optional.

use std::path::PathBuf;

use crate::error::ContextError;

/// Where a build context comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// `-`: a Dockerfile or a context archive on standard input.
    Stdin,
    /// A directory on this machine.
    Dir(PathBuf),
    /// A git repository to clone.
    Git(GitSpec),
    /// An http(s) URL to a context archive or a Dockerfile.
    Url(String),
}

/// A parsed git context URL. Invariant: `remote` and `reference` never start with `-` (they
/// are passed to `git` as arguments), `subdir` is relative (no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSpec {
    /// What `git fetch` is given (the URL without its fragment).
    pub remote: String,
    /// Branch, tag or commit; `None` means the remote's HEAD.
    pub reference: Option<String>,
    /// A directory inside the repository to use as the context root.
    pub subdir: Option<String>,
}

impl ContextSource {
    /// Classifies the `CONTEXT` argument. A local directory wins over URL forms (as in Docker);
    /// anything else that is neither a URL nor a directory is `Dir` (the caller reports it
    /// missing).
    pub fn classify(arg: &str) -> Result<ContextSource, ContextError> {
        if arg == "-" {
            return Ok(ContextSource::Stdin);
        }
        let path = PathBuf::from(arg);
        if path.is_dir() {
            return Ok(ContextSource::Dir(path));
        }
        if is_git_url(arg) {
            return GitSpec::parse(arg).map(ContextSource::Git);
        }
        if arg.starts_with("http://") || arg.starts_with("https://") {
            return Ok(ContextSource::Url(arg.to_string()));
        }
        Ok(ContextSource::Dir(path))
    }
}

/// Docker's `IsGitURL`, plus `file://`.
fn is_git_url(arg: &str) -> bool {
    let is_http = arg.starts_with("http://") || arg.starts_with("https://");
    let before_fragment = arg.split('#').next().unwrap_or(arg);
    (is_http && before_fragment.ends_with(".git"))
        || ["git://", "git@", "github.com/", "file://"]
            .iter()
            .any(|p| arg.starts_with(p))
}

impl GitSpec {
    /// Parses `URL[#ref][:subdir]`. `github.com/…` gets `https://` in front.
    pub fn parse(url: &str) -> Result<GitSpec, ContextError> {
        let bad = |problem: &str| ContextError::BadGitUrl {
            url: url.to_string(),
            problem: problem.to_string(),
        };
        let (remote, fragment) = match url.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (url, None),
        };
        if remote.is_empty() {
            return Err(bad("the repository URL is empty"));
        }
        if remote.starts_with('-') {
            return Err(bad("a repository URL cannot start with '-'"));
        }
        let remote = if remote.starts_with("github.com/") {
            format!("https://{remote}")
        } else {
            remote.to_string()
        };
        let (reference, subdir) = match fragment {
            None => (None, None),
            Some(f) => {
                let (r, s) = match f.split_once(':') {
                    Some((r, s)) => (r, Some(s)),
                    None => (f, None),
                };
                let reference = (!r.is_empty()).then(|| r.to_string());
                let subdir = s
                    .map(|s| s.trim_matches('/'))
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(str::to_string);
                (reference, subdir)
            }
        };
        if reference.as_deref().is_some_and(|r| r.starts_with('-')) {
            return Err(bad("a git reference cannot start with '-'"));
        }
        Ok(GitSpec {
            remote,
            reference,
            subdir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(url: &str) -> GitSpec {
        match ContextSource::classify(url).expect("classify") {
            ContextSource::Git(g) => g,
            other => panic!("{url} is not git: {other:?}"),
        }
    }

    #[test]
    fn classification_follows_docker() {
        assert_eq!(ContextSource::classify("-").unwrap(), ContextSource::Stdin);
        assert_eq!(
            ContextSource::classify("https://example.com/ctx.tar.gz").unwrap(),
            ContextSource::Url("https://example.com/ctx.tar.gz".into())
        );
        assert_eq!(
            ContextSource::classify("/nonexistent/dir").unwrap(),
            ContextSource::Dir(PathBuf::from("/nonexistent/dir"))
        );
        let g = git("https://example.com/repo.git#v1.2:docker/app");
        assert_eq!(g.remote, "https://example.com/repo.git");
        assert_eq!(g.reference.as_deref(), Some("v1.2"));
        assert_eq!(g.subdir.as_deref(), Some("docker/app"));
        let g = git("git@github.com:owner/repo.git");
        assert_eq!(g.remote, "git@github.com:owner/repo.git");
        assert_eq!((g.reference, g.subdir), (None, None));
        let g = git("github.com/owner/repo#:sub");
        assert_eq!(g.remote, "https://github.com/owner/repo");
        assert_eq!((g.reference, g.subdir.as_deref()), (None, Some("sub")));
        assert_eq!(
            git("file:///srv/repo#main").reference.as_deref(),
            Some("main")
        );
        assert_eq!(git("git://host/repo").remote, "git://host/repo");
    }

    #[test]
    fn option_injection_is_rejected() {
        assert!(GitSpec::parse("https://h/r.git#--upload-pack=x").is_err());
        assert!(GitSpec::parse("#main").is_err());
    }
}
