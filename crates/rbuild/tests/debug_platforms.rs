//! `rbuild debug platforms`: every known platform on a line of its own, the host's as native,
//! and how to enable a platform that cannot run.

use std::process::Command;

#[test]
fn debug_platforms_lists_the_host_as_native_and_says_how_to_enable_the_rest() {
    let out = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .args(["debug", "platforms"])
        .output()
        .expect("run rbuild");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let host = rbuild_types::Platform::host();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{host} ")) && l.ends_with(" native")),
        "the host {host} is native:\n{text}"
    );
    for arch in ["amd64", "arm64", "arm/v7", "riscv64", "s390x"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("linux/{arch} "))),
            "linux/{arch} listed:\n{text}"
        );
    }
    let cannot = lines.iter().any(|l| l.ends_with("cannot run here"));
    let hint = lines.iter().any(|l| l.starts_with("to enable: "));
    assert_eq!(
        cannot, hint,
        "a platform that cannot run comes with a hint:\n{text}"
    );
}
