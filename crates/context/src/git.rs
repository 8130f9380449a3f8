//! Git contexts: the repository is fetched with the `git` command into a private temporary
//! directory (shallow, `--depth 1`, where the remote allows it), the wanted ref checked out,
//! submodules initialised, the `.git` directory removed (as BuildKit, the context does not
//! include it), and the `subdir` (if any) used as the context root.
//!
//! `reference` may be a branch, a tag or a commit. A shallow fetch of the reference is tried
//! first; when the remote refuses it (old servers refuse a commit id), everything is fetched
//! and the reference checked out from there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clean::clean;
use crate::context::BuildContext;
use crate::error::ContextError;
use crate::git_cmd::{self, Transports};
use crate::source::GitSpec;

impl BuildContext {
    /// Clones `spec` and opens its (sub)directory as the context. `dockerfile` is the
    /// Dockerfile's path relative to that directory (default `Dockerfile`); it must exist
    /// ([`ContextError::MissingDockerfile`]).
    pub fn from_git(
        spec: &GitSpec,
        dockerfile: Option<&str>,
    ) -> Result<BuildContext, ContextError> {
        let tmp = tempfile::Builder::new()
            .prefix("rbuild-git-")
            .tempdir()
            .map_err(ContextError::io(std::env::temp_dir()))?;
        let work = tmp.path().join("repo");
        std::fs::create_dir(&work).map_err(ContextError::io(&work))?;
        fetch(spec, &work)?;
        let root = context_root(spec, &work)?;
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
}

/// Fetches and checks out `spec` into the empty directory `work`.
fn fetch(spec: &GitSpec, work: &Path) -> Result<(), ContextError> {
    let run = |args: &[&str]| git(spec, work, args);
    run(&["init", "-q"])?;
    run(&["remote", "add", "origin", &spec.remote])?;
    let reference = spec.reference.as_deref().unwrap_or("HEAD");
    let shallow = run(&[
        "fetch",
        "-q",
        "--depth",
        "1",
        "--no-tags",
        "origin",
        reference,
    ]);
    if shallow.is_ok() {
        run(&["checkout", "-q", "FETCH_HEAD"])?;
    } else {
        // The remote refused a shallow fetch of this reference: fetch everything.
        run(&["fetch", "-q", "--tags", "origin"])?;
        let candidates = [
            format!("origin/{reference}"),
            format!("refs/tags/{reference}"),
            reference.to_string(),
        ];
        let found = candidates
            .iter()
            .find(|c| run(&["rev-parse", "-q", "--verify", &format!("{c}^{{commit}}")]).is_ok());
        match found {
            Some(c) => run(&["checkout", "-q", c])?,
            None => {
                return Err(ContextError::Git {
                    url: spec.remote.clone(),
                    command: format!("fetch origin {reference}"),
                    detail: format!("no branch, tag or commit named {reference:?}"),
                })
            }
        }
    }
    run(&[
        "submodule",
        "update",
        "-q",
        "--init",
        "--recursive",
        "--depth",
        "1",
    ])?;
    let dot_git = work.join(".git");
    std::fs::remove_dir_all(&dot_git).map_err(ContextError::io(&dot_git))?;
    Ok(())
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

/// Runs `git ARGS` in `dir` ([`git_cmd::run`]; the named repository may be a local one).
fn git(spec: &GitSpec, dir: &Path, args: &[&str]) -> Result<(), ContextError> {
    git_cmd::run(Some(dir), args, Transports::AlsoLocal)
        .map(drop)
        .map_err(|f| ContextError::Git {
            url: spec.remote.clone(),
            command: f.command,
            detail: f.detail,
        })
}
