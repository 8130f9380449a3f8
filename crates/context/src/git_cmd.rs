//! Running the `git` command for remote sources: the git half of the `RemoteSource` port
//! ([`crate::GitCli`], used by git contexts here and `ADD <git url>` in the solver) runs every
//! git command through [`run`], so both get the same safety.
//!
//! Git never waits for input: no terminal or askpass prompt, ssh in batch mode (no host-key
//! or password question). Messages are untranslated (`LC_ALL=C`). Only network transports
//! (`git`, `ssh`, `http`, `https`) are allowed, everywhere, submodules included;
//! [`Transports::AlsoLocal`] also lets the top-level repository be a local one (`file://`),
//! never a submodule.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Which transports a git command may use (the port's [`rbuild_ports::GitTransports`]).
pub use rbuild_ports::GitTransports as Transports;

/// Why a git command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitFailure {
    /// The arguments, space-separated.
    pub command: String,
    /// Git's exit status and stderr, or why it could not run.
    pub detail: String,
}

impl GitFailure {
    /// The git subcommand (`fetch`, `ls-remote`…).
    pub fn subcommand(&self) -> &str {
        self.command.split(' ').next().unwrap_or("")
    }
}

/// Runs `git ARGS` (in `dir`, if given) as described in the module docs; returns stdout.
pub fn run(
    dir: Option<&Path>,
    args: &[&str],
    transports: Transports,
) -> Result<String, GitFailure> {
    let file = match transports {
        Transports::Network => "protocol.file.allow=never",
        Transports::AlsoLocal => "protocol.file.allow=user",
    };
    let mut cmd = Command::new("git");
    for setting in [
        "advice.detachedHead=false",
        "init.defaultBranch=main",
        "protocol.allow=never",
        "protocol.git.allow=always",
        "protocol.ssh.allow=always",
        "protocol.http.allow=always",
        "protocol.https.allow=always",
        file,
    ] {
        cmd.args(["-c", setting]);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        // The `protocol.*` settings above decide; an inherited allow-list would override them.
        .env_remove("GIT_ALLOW_PROTOCOL");
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        // Never wait for a host-key or password prompt (ssh reads them from the terminal).
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let failure = |detail: String| GitFailure {
        command: args.join(" "),
        detail,
    };
    let out = cmd
        .output()
        .map_err(|e| failure(format!("cannot run git (is it installed?): {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(failure(format!(
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// The root of a checkout at `work`, or its `subdir`, which must be a directory that (symlinks
/// resolved) stays inside the checkout and outside its `.git`. The error says what is wrong.
pub fn subdir_root(work: &Path, subdir: Option<&str>) -> Result<PathBuf, &'static str> {
    let Some(subdir) = subdir.filter(|s| !s.is_empty()) else {
        return Ok(work.to_path_buf());
    };
    let top = work
        .canonicalize()
        .map_err(|_| "cannot be resolved: the checkout is gone")?;
    let root = work
        .join(subdir)
        .canonicalize()
        .map_err(|_| "does not exist in the repository")?;
    if !root.starts_with(&top) || root.starts_with(top.join(".git")) {
        return Err("leads out of the checkout");
    }
    if !root.is_dir() {
        return Err("is not a directory");
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdirs_stay_inside_the_checkout() {
        let t = tempfile::tempdir().unwrap();
        let work = t.path().join("repo");
        std::fs::create_dir_all(work.join("app/src")).unwrap();
        std::fs::create_dir_all(work.join(".git")).unwrap();
        std::fs::write(work.join("file"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", work.join("out")).unwrap();
        let canon = work.canonicalize().unwrap();
        assert_eq!(subdir_root(&work, None), Ok(work.clone()));
        assert_eq!(
            subdir_root(&work, Some("app/src")),
            Ok(canon.join("app/src"))
        );
        assert_eq!(
            subdir_root(&work, Some("../")),
            Err("leads out of the checkout")
        );
        assert_eq!(
            subdir_root(&work, Some("out")),
            Err("leads out of the checkout")
        );
        assert_eq!(
            subdir_root(&work, Some(".git")),
            Err("leads out of the checkout")
        );
        assert_eq!(subdir_root(&work, Some("file")), Err("is not a directory"));
        assert_eq!(
            subdir_root(&work, Some("missing")),
            Err("does not exist in the repository")
        );
    }

    #[test]
    fn local_repositories_need_also_local() {
        if rbuild_test_support::require_tool("git").is_none() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let url = format!("file://{}", t.path().display());
        let refused = run(None, &["ls-remote", "--", &url], Transports::Network)
            .expect_err("file:// is not a network transport");
        assert_eq!(refused.subcommand(), "ls-remote");
        // Allowed, it fails for another reason (no repository there).
        let other = run(None, &["ls-remote", "--", &url], Transports::AlsoLocal)
            .expect_err("no repository");
        assert!(!other.detail.contains("not allowed"), "{other:?}");
        assert!(refused.detail.contains("not allowed"), "{refused:?}");
    }
}
