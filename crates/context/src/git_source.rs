//! [`GitCli`]: the git half of the `RemoteSource` port ([`GitSource`]), with the `git`
//! command run by [`git_cmd::run`]. Git contexts (here) and `ADD <git url>` (the solver) share
//! this one implementation of resolving and checking out.
//!
//! Resolving lists the remote's refs (`git ls-remote`) and picks the reference as git
//! prefers it. A checkout initialises a repository in the destination, fetches what it
//! needs — shallow (`--depth 1`) by commit id, else shallow by the reference's name, else
//! everything (dumb servers, and old ones that refuse ids) — checks it out, updates the
//! submodules (shallow) and removes `.git` (and each submodule's `.git` file) unless asked to
//! keep it.

use std::fs;
use std::path::Path;

use rbuild_ports::{
    is_commit_id, GitCheckout, GitError, GitRef, GitResolve, GitRevision, GitSource, GitTransports,
    PathIoError,
};

use crate::git_cmd;

/// [`PathIoError::on`], as the port's [`GitError`].
fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> GitError {
    let f = PathIoError::on(action, path.to_path_buf());
    move |e| GitError::Io(f(e))
}

/// Git through the `git` command.
#[derive(Clone, Copy, Debug, Default)]
pub struct GitCli;

impl GitSource for GitCli {
    fn git_resolve(&self, r: &GitResolve<'_>) -> Result<GitRef, GitError> {
        let (remote, reference) = (r.remote, r.reference);
        let listing = git(remote, None, &["ls-remote", "--", remote], r.transports)?;
        let commit = pick_ref(&listing, reference).ok_or_else(|| GitError::UnknownRef {
            remote: remote.to_string(),
            reference: reference.to_string(),
        })?;
        Ok(GitRef {
            commit: commit.to_ascii_lowercase(),
            tag_object: tag_object(&listing, reference),
        })
    }

    fn git_checkout(&self, c: &GitCheckout<'_>) -> Result<(), GitError> {
        let run = |args: &[&str]| git(c.remote, Some(c.dest), args, c.transports);
        run(&["init", "-q"])?;
        run(&["remote", "add", "origin", c.remote])?;
        let target = fetch(c, &run)?;
        run(&["checkout", "-q", &target])?;
        let submodules = c.dest.join(".gitmodules").exists();
        if submodules {
            run(&[
                "submodule",
                "update",
                "-q",
                "--init",
                "--recursive",
                "--depth",
                "1",
            ])?;
        }
        if !c.keep_git_dir {
            let dot_git = c.dest.join(".git");
            fs::remove_dir_all(&dot_git).map_err(io_err("remove", &dot_git))?;
            if submodules {
                // Each submodule's `.git` is a file pointing into the `.git` just removed.
                remove_git_files(c.dest)?;
            }
        }
        Ok(())
    }
}

/// Fetches what `c.revision` needs into the repository at `c.dest`; returns what to check out.
fn fetch(
    c: &GitCheckout<'_>,
    run: &dyn Fn(&[&str]) -> Result<String, GitError>,
) -> Result<String, GitError> {
    let shallow =
        |what: &str| run(&["fetch", "-q", "--depth", "1", "--no-tags", "origin", what]).is_ok();
    let has_commit =
        |commit: &str| run(&["cat-file", "-e", &format!("{commit}^{{commit}}")]).is_ok();
    match c.revision {
        GitRevision::Commit { commit, named_by } => {
            if shallow(commit) && has_commit(commit) {
                return Ok(commit.to_string());
            }
            if let Some(name) = named_by.filter(|r| !is_commit_id(r)) {
                if shallow(name) && has_commit(commit) {
                    return Ok(commit.to_string());
                }
            }
        }
        GitRevision::Reference(reference) => {
            if shallow(reference) {
                return Ok("FETCH_HEAD".to_string());
            }
        }
    }
    run(&[
        "fetch",
        "-q",
        "--tags",
        "origin",
        "+refs/heads/*:refs/remotes/origin/*",
    ])?;
    match c.revision {
        GitRevision::Commit { commit, .. } if has_commit(commit) => Ok(commit.to_string()),
        GitRevision::Commit { commit, .. } => Err(GitError::MissingCommit {
            remote: c.remote.to_string(),
            commit: commit.to_string(),
        }),
        GitRevision::Reference(reference) => [
            format!("origin/{reference}"),
            format!("refs/tags/{reference}"),
            reference.to_string(),
        ]
        .into_iter()
        .find(|name| run(&["rev-parse", "-q", "--verify", &format!("{name}^{{commit}}")]).is_ok())
        .ok_or_else(|| GitError::UnknownRevision {
            remote: c.remote.to_string(),
            reference: reference.to_string(),
        }),
    }
}

/// Removes every `.git` regular file below `dir` (symlinks are not followed).
fn remove_git_files(dir: &Path) -> Result<(), GitError> {
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))? {
        let entry = entry.map_err(io_err("read", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_err("stat", &path))?;
        if kind.is_dir() {
            remove_git_files(&path)?;
        } else if kind.is_file() && entry.file_name() == ".git" {
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
    }
    Ok(())
}

/// The id of the tag object when `reference` is an annotated tag (listed with a peeled
/// `^{}` line), lower-case.
fn tag_object(listing: &str, reference: &str) -> Option<String> {
    let name = format!("refs/tags/{reference}");
    let peeled = format!("{name}^{{}}");
    let mut object = None;
    let mut annotated = false;
    for (oid, n) in listing.lines().filter_map(|l| l.split_once('\t')) {
        if n.trim() == name {
            object = Some(oid.trim().to_ascii_lowercase());
        } else if n.trim() == peeled {
            annotated = true;
        }
    }
    object.filter(|_| annotated)
}

/// The commit of `reference` in `git ls-remote` output: an annotated tag's peeled commit
/// first, then a tag, a branch, or a full ref name (`HEAD`, `refs/…`), as git prefers them.
fn pick_ref(listing: &str, reference: &str) -> Option<String> {
    let refs: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(oid, name)| (oid.trim(), name.trim()))
        .collect();
    let candidates = [
        format!("refs/tags/{reference}^{{}}"),
        format!("refs/tags/{reference}"),
        format!("refs/heads/{reference}"),
        format!("{reference}^{{}}"),
        reference.to_string(),
    ];
    candidates.iter().find_map(|want| {
        refs.iter()
            .find(|(_, name)| name == want)
            .map(|(oid, _)| oid.to_string())
    })
}

/// Runs `git ARGS` (in `dir`, if given) through [`git_cmd::run`]; returns stdout.
fn git(
    remote: &str,
    dir: Option<&Path>,
    args: &[&str],
    transports: GitTransports,
) -> Result<String, GitError> {
    git_cmd::run(dir, args, transports).map_err(|f| GitError::Command {
        remote: remote.to_string(),
        command: f.command,
        detail: f.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
1111111111111111111111111111111111111111\tHEAD
2222222222222222222222222222222222222222\trefs/heads/main
3333333333333333333333333333333333333333\trefs/tags/v1
4444444444444444444444444444444444444444\trefs/tags/v1^{}
5555555555555555555555555555555555555555\trefs/heads/v1
6666666666666666666666666666666666666666\trefs/tags/light
";

    #[test]
    fn references_resolve_like_git() {
        let pick = |r| pick_ref(LISTING, r);
        assert_eq!(pick("HEAD").as_deref(), Some(&"1".repeat(40)[..]));
        assert_eq!(pick("main").as_deref(), Some(&"2".repeat(40)[..]));
        assert_eq!(pick("v1").as_deref(), Some(&"4".repeat(40)[..]));
        assert_eq!(pick("light").as_deref(), Some(&"6".repeat(40)[..]));
        assert_eq!(pick("refs/heads/v1").as_deref(), Some(&"5".repeat(40)[..]));
        assert_eq!(pick("nope"), None);
        assert!(is_commit_id(&"a".repeat(40)));
        assert!(!is_commit_id("abc123"));
        assert_eq!(
            tag_object(LISTING, "v1").as_deref(),
            Some(&"3".repeat(40)[..])
        );
        assert_eq!(tag_object(LISTING, "light"), None);
    }
}
