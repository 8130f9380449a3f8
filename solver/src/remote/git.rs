//! `ADD <git url>`: the reference is resolved to a commit with `git ls-remote` (or taken as
//! is when it already is a full commit id) and checked against `ADD --checksum` (a commit-id
//! prefix, as BuildKit checks it), and the commit is fetched, shallow where the
//! server allows it, into a private directory under the store's `tmp/`, checked out with its
//! submodules, and its tree (or `subdir`) moved into the layer. `.git` is removed unless
//! `keep_git_dir`.

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_cache::Store;
use rbuild_context::git_cmd::{self, Transports};
use rbuild_graph::GitOp;

use super::error::{io_err, RemoteError};

/// The full commit id `op.reference` names at `op.remote` now, checked against
/// `op.checksum` (`ADD --checksum`) when there is one.
pub(super) fn resolve(op: &GitOp) -> Result<String, RemoteError> {
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
    let listing = git(&op.remote, None, &["ls-remote", "--", &op.remote])?;
    let commit = pick_ref(&listing, reference).ok_or_else(|| RemoteError::UnknownRef {
        remote: op.remote.clone(),
        reference: reference.to_string(),
    })?;
    check_checksum(op, &commit, tag_object(&listing, reference).as_deref())?;
    Ok(commit)
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

/// A full SHA-1 or SHA-256 object id.
fn is_commit_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks out `commit` of `op.remote` and moves its tree (or `op.subdir`) into `upper`.
pub(super) fn materialize(
    store: &Store,
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
    let run = |args: &[&str]| git(&op.remote, Some(work), args);
    run(&["init", "-q"])?;
    run(&["remote", "add", "origin", &op.remote])?;
    fetch(op, commit, work)?;
    run(&["checkout", "-q", commit])?;
    let submodules = work.join(".gitmodules").exists();
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
    if !op.keep_git_dir {
        let dot_git = work.join(".git");
        fs::remove_dir_all(&dot_git).map_err(io_err("remove", &dot_git))?;
        if submodules {
            // Each submodule's `.git` is a file pointing into the `.git` just removed.
            remove_git_files(work)?;
        }
    }
    let root = tree_root(op, work)?;
    for entry in fs::read_dir(&root).map_err(io_err("read", &root))? {
        let entry = entry.map_err(io_err("read", &root))?;
        let to = upper.join(entry.file_name());
        fs::rename(entry.path(), &to).map_err(io_err("move checkout entry to", &to))?;
    }
    Ok(())
}

/// Removes every `.git` regular file below `dir` (symlinks are not followed).
fn remove_git_files(dir: &Path) -> Result<(), RemoteError> {
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

/// Fetches `commit` into the repository at `work`: by id (shallow), else by the reference's
/// name (shallow) if that still names the commit, else everything (dumb servers, old
/// servers refusing ids).
fn fetch(op: &GitOp, commit: &str, work: &Path) -> Result<(), RemoteError> {
    let run = |args: &[&str]| git(&op.remote, Some(work), args);
    let has_commit = || run(&["cat-file", "-e", &format!("{commit}^{{commit}}")]).is_ok();
    if run(&["fetch", "-q", "--depth", "1", "--no-tags", "origin", commit]).is_ok() && has_commit()
    {
        return Ok(());
    }
    if let Some(r) = op.reference.as_deref().filter(|r| !is_commit_id(r)) {
        if run(&["fetch", "-q", "--depth", "1", "--no-tags", "origin", r]).is_ok() && has_commit() {
            return Ok(());
        }
    }
    run(&[
        "fetch",
        "-q",
        "--tags",
        "origin",
        "+refs/heads/*:refs/remotes/origin/*",
    ])?;
    if has_commit() {
        Ok(())
    } else {
        Err(RemoteError::Git {
            remote: op.remote.clone(),
            command: format!("fetch {commit}"),
            detail: "the commit is not in the repository".to_string(),
        })
    }
}

/// The checkout's root or its `subdir` (see [`git_cmd::subdir_root`]).
fn tree_root(op: &GitOp, work: &Path) -> Result<PathBuf, RemoteError> {
    git_cmd::subdir_root(work, op.subdir.as_deref()).map_err(|problem| RemoteError::Subdir {
        remote: op.remote.clone(),
        subdir: op.subdir.clone().unwrap_or_default(),
        problem,
    })
}

/// Runs `git ARGS` (in `dir`, if given) over network transports only ([`git_cmd::run`]);
/// returns stdout.
fn git(remote: &str, dir: Option<&Path>, args: &[&str]) -> Result<String, RemoteError> {
    git_cmd::run(dir, args, Transports::Network).map_err(|f| RemoteError::Git {
        remote: remote.to_string(),
        command: f.subcommand().to_string(),
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
        assert_eq!(resolve(&op(&"a".repeat(40))).unwrap(), "a".repeat(40));
        assert_eq!(resolve(&op("AAAA")).unwrap(), "a".repeat(40));
        let e = resolve(&op("ab")).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "expected checksum to match ab, got {}",
                "a".repeat(40)
            )),
            "{e}"
        );
        let e = resolve(&op("foobar")).unwrap_err().to_string();
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
        match resolve(&op) {
            Err(RemoteError::Git { detail, .. }) => {
                assert!(detail.contains("not allowed"), "{detail}")
            }
            other => panic!("ext:: must be refused: {other:?}"),
        }
    }
}
