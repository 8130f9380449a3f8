//! `ADD <git url>`, through the git half of the `RemoteSource` port ([`GitSource`]): the
//! reference is resolved to a commit from the remote's ref listing (or taken as is when it
//! already is a full commit id) and checked against `ADD --checksum` (a commit-id prefix, as
//! BuildKit checks it); the commit is checked out, with its submodules, into a private
//! directory under the store's `tmp/` (`.git` kept only with `keep_git_dir`), and its tree (or
//! `subdir`) moved into the layer. Only network transports are allowed: a Dockerfile does not
//! read the host's repositories.

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_cache::Store;
use rbuild_context::git_cmd;
use rbuild_graph::GitOp;
use rbuild_ports::{is_commit_id, GitCheckout, GitResolve, GitRevision, GitSource, GitTransports};

use super::error::{io_err, RemoteError};

/// The full commit id `op.reference` names at `op.remote` now, checked against
/// `op.checksum` (`ADD --checksum`) when there is one.
pub(super) fn resolve(git: &dyn GitSource, op: &GitOp) -> Result<String, RemoteError> {
    if let Some(sum) = &op.checksum {
        if sum.is_empty() || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RemoteError::GitChecksumFormat {
                remote: op.remote.clone(),
                checksum: sum.clone(),
            });
        }
    }
    let reference = op.reference.as_deref().unwrap_or("HEAD");
    if is_commit_id(reference) {
        let commit = reference.to_ascii_lowercase();
        check_checksum(op, &commit, None)?;
        return Ok(commit);
    }
    let found = git.git_resolve(&GitResolve {
        remote: &op.remote,
        reference,
        transports: GitTransports::Network,
    })?;
    check_checksum(op, &found.commit, found.tag_object.as_deref())?;
    Ok(found.commit)
}

/// `ADD --checksum` of a git source, as BuildKit checks it: the commit id (or, for an
/// annotated tag, the tag object's id) must start with the checksum. Unlike BuildKit the
/// comparison ignores case (git prints lower-case ids).
fn check_checksum(op: &GitOp, commit: &str, tag: Option<&str>) -> Result<(), RemoteError> {
    let Some(sum) = &op.checksum else {
        return Ok(());
    };
    let want = sum.to_ascii_lowercase();
    if commit.starts_with(&want) || tag.is_some_and(|t| t.starts_with(&want)) {
        return Ok(());
    }
    Err(RemoteError::GitChecksum {
        remote: op.remote.clone(),
        expected: sum.clone(),
        actual: match tag {
            Some(t) => format!("{t} or {commit}"),
            None => commit.to_string(),
        },
    })
}

/// Checks out `commit` of `op.remote` and moves its tree (or `op.subdir`) into `upper`.
pub(super) fn materialize(
    store: &Store,
    git: &dyn GitSource,
    op: &GitOp,
    commit: &str,
    upper: &Path,
) -> Result<(), RemoteError> {
    let staging = store.root().join("tmp");
    let tmp = tempfile::Builder::new()
        .prefix("git-")
        .tempdir_in(&staging)
        .map_err(io_err("create a checkout directory in", &staging))?;
    let work = tmp.path();
    git.git_checkout(&GitCheckout {
        remote: &op.remote,
        revision: GitRevision::Commit {
            commit,
            named_by: op.reference.as_deref(),
        },
        dest: work,
        keep_git_dir: op.keep_git_dir,
        transports: GitTransports::Network,
    })?;
    let root = tree_root(op, work)?;
    for entry in fs::read_dir(&root).map_err(io_err("read", &root))? {
        let entry = entry.map_err(io_err("read", &root))?;
        let to = upper.join(entry.file_name());
        fs::rename(entry.path(), &to).map_err(io_err("move checkout entry to", &to))?;
    }
    Ok(())
}

/// The checkout's root or its `subdir` (see [`git_cmd::subdir_root`]).
fn tree_root(op: &GitOp, work: &Path) -> Result<PathBuf, RemoteError> {
    git_cmd::subdir_root(work, op.subdir.as_deref()).map_err(|problem| RemoteError::Subdir {
        remote: op.remote.clone(),
        subdir: op.subdir.clone().unwrap_or_default(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use rbuild_context::GitCli;
    use rbuild_ports::GitError;
    use rbuild_test_support::fakes::NoRemote;

    use super::*;

    #[test]
    fn checksums_are_commit_prefixes() {
        let op = |sum: &str| GitOp {
            remote: "git://h/r".into(),
            reference: Some("a".repeat(40)),
            subdir: None,
            keep_git_dir: false,
            checksum: Some(sum.into()),
        };
        // A full commit id as the reference needs no network.
        let git = NoRemote;
        assert_eq!(resolve(&git, &op(&"a".repeat(40))).unwrap(), "a".repeat(40));
        assert_eq!(resolve(&git, &op("AAAA")).unwrap(), "a".repeat(40));
        let e = resolve(&git, &op("ab")).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "expected checksum to match ab, got {}",
                "a".repeat(40)
            )),
            "{e}"
        );
        let e = resolve(&git, &op("foobar")).unwrap_err().to_string();
        assert!(
            e.contains("invalid checksum foobar for Git URL, expected hex commit hash"),
            "{e}"
        );
        let tag = "3".repeat(40);
        let commit = "4".repeat(40);
        let o = op("333");
        assert!(check_checksum(&o, &commit, Some(&tag)).is_ok());
        let e = check_checksum(&op("5"), &commit, Some(&tag))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("got {tag} or {commit}")), "{e}");
    }

    #[test]
    fn only_network_transports_are_allowed() {
        if rbuild_test_support::require_tool("git").is_none() {
            return;
        }
        let op = GitOp {
            remote: "ext::sh -c false".into(),
            reference: Some("main".into()),
            subdir: None,
            keep_git_dir: false,
            checksum: None,
        };
        match resolve(&GitCli, &op) {
            Err(RemoteError::Git(GitError::Command { detail, .. })) => {
                assert!(detail.contains("not allowed"), "{detail}")
            }
            other => panic!("ext:: must be refused: {other:?}"),
        }
    }
}
