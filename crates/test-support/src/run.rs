//! Running a tool a test needs (git, openssl, ...), insisting on success.

use std::process::Command;

/// Runs `cmd`, which must succeed (else the test fails with `what` and its stderr); returns
/// its trimmed stdout.
#[track_caller]
pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
