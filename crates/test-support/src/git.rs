//! Running git in a test repository, with a fixed identity and `main` as the first branch.

use std::path::Path;
use std::process::Command;

use crate::run::run_ok;

/// Runs `git args` in `dir` and insists on success; returns its trimmed stdout.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    run_ok(
        Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir),
        &format!("git {args:?}"),
    )
}
