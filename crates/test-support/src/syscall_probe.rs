//! A tiny static program that makes one raw syscall and prints the errno it got (0 when the
//! call succeeded): `probe NR [ARG…]` (numbers in C notation, up to six arguments). Compiled
//! with the host's gcc (and glibc's static libc) into a test's directory, it shows what a
//! seccomp filter lets through, whatever the image holds.

use std::path::{Path, PathBuf};

use crate::skip::require_tool;

const SOURCE: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long a[6] = {0};
    if (argc < 2) return 2;
    for (int i = 2; i < argc && i < 8; i++) a[i - 2] = strtol(argv[i], NULL, 0);
    long rc = syscall(strtol(argv[1], NULL, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
    printf("%ld\n", rc < 0 ? (long)errno : 0L);
    return 0;
}
"#;

/// Compiles the probe to `dir/probe` (static), or skips loudly when gcc cannot (a failure
/// under `RBUILD_REQUIRE_ALL=1`).
#[track_caller]
pub fn build_probe(dir: &Path) -> Option<PathBuf> {
    let gcc = require_tool("gcc")?;
    let src = dir.join("probe.c");
    std::fs::write(&src, SOURCE).expect("write probe.c");
    let out = dir.join("probe");
    let status = std::process::Command::new(gcc)
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run gcc");
    std::fs::remove_file(&src).expect("remove probe.c");
    crate::skip::require("gcc -static (glibc's libc.a, libc6-dev)", status.success()).then_some(out)
}

/// The errno the probe at `probe` gets on this host for `args` (no filter but rbuild's own).
pub fn on_host(probe: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(probe)
        .args(args)
        .output()
        .expect("run probe");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
