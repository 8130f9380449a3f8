//! Git contexts: the repository is checked out through the git half of the `RemoteSource`
//! port ([`GitSource::git_checkout`], implemented by [`crate::GitCli`]) into a private
//! temporary directory: shallow where the remote allows it, the wanted reference (a branch, a
//! tag or a commit; `HEAD` by default), submodules initialised, the `.git` directory removed
//! (as BuildKit, the context does not include it). The `subdir` (if any) is the context root.
//! The repository the user named may be a local one (`file://`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rbuild_ports::{GitCheckout, GitRevision, GitSource, GitTransports};

use crate::clean::clean;
use crate::context::BuildContext;
use crate::error::ContextError;
use crate::git_cmd;
use crate::source::GitSpec;

impl BuildContext {
    /// Checks out `spec` through `git` and opens its (sub)directory as the context.
    /// `dockerfile` is the Dockerfile's path relative to that directory (default
    /// `Dockerfile`); it must exist ([`ContextError::MissingDockerfile`]).
    pub fn from_git(
        git: &dyn GitSource,
        spec: &GitSpec,
        dockerfile: Option<&str>,
    ) -> Result<BuildContext, ContextError> {
        let (tmp, root) = checkout(git, spec)?;
        let name = dockerfile.unwrap_or("Dockerfile");
        let df = root.join(clean(name.trim_start_matches('/')));
        if !df.is_file() {
            return Err(ContextError::MissingDockerfile {
                name: name.to_string(),
                source_desc: format!("git context {}", spec.remote),
            });
        }
        let ctx = BuildContext::from_dir(&root, Some(&df))?;
        Ok(ctx.keeping(Arc::new(tmp)))
    }

    /// Checks out `spec` through `git` and opens its (sub)directory as a context that needs
    /// no Dockerfile (a named context, `--build-context NAME=<git URL>`): its own
    /// `.dockerignore` applies.
    pub fn from_git_tree(
        git: &dyn GitSource,
        spec: &GitSpec,
    ) -> Result<BuildContext, ContextError> {
        let (tmp, root) = checkout(git, spec)?;
        let ctx = BuildContext::from_dir(&root, None)?;
        Ok(ctx.keeping(Arc::new(tmp)))
    }
}

/// Checks `spec` out into a new temporary directory; returns it and the context root in it.
fn checkout(
    git: &dyn GitSource,
    spec: &GitSpec,
) -> Result<(tempfile::TempDir, PathBuf), ContextError> {
    let tmp = tempfile::Builder::new()
        .prefix("rbuild-git-")
        .tempdir()
        .map_err(ContextError::io(std::env::temp_dir()))?;
    let work = tmp.path().join("repo");
    std::fs::create_dir(&work).map_err(ContextError::io(&work))?;
    git.git_checkout(&GitCheckout {
        remote: &spec.remote,
        revision: GitRevision::Reference(spec.reference.as_deref().unwrap_or("HEAD")),
        dest: &work,
        keep_git_dir: false,
        transports: GitTransports::AlsoLocal,
    })
    .map_err(ContextError::Git)?;
    let root = context_root(spec, &work)?;
    Ok((tmp, root))
}

/// The context root inside the checkout: `work` or its `subdir` (see
/// [`git_cmd::subdir_root`]).
fn context_root(spec: &GitSpec, work: &Path) -> Result<PathBuf, ContextError> {
    git_cmd::subdir_root(work, spec.subdir.as_deref()).map_err(|problem| ContextError::GitSubdir {
        url: spec.remote.clone(),
        subdir: spec.subdir.clone().unwrap_or_default(),
        problem,
    })
}
