//! Differential test against BuildKit on real-world Dockerfiles (`testdata/realworld/`): runs
//! the corpus harness, `scripts/realworld.py --reference recorded --offline`, with the rbuild
//! built for this test. The harness builds every `offline` case and compares the image's normal
//! form with what BuildKit built from the same case, as recorded in the case (`buildkit.txt`,
//! masked by `noise.txt`, with the lines of `newer-frontend.txt` where today's Dockerfile
//! frontend writes something else than the recording BuildKit). It prints a `PASS`/`FAIL` line
//! per case and `realworld: N passed, N failed`, and exits non-zero on any difference.
//!
//! The normal form has one implementation, the harness's: it reads images with Python's
//! `tarfile`, an oracle that shares no code with the rbuild under test (testdata/realworld/README.md).
//!
//! Needs root (RUN), python3, and the anchor registry on 127.0.0.1:5000
//! (`../shared/bench/setup.sh`), which serves the base images the BuildKit results were recorded
//! on (busybox, debian:bookworm-slim): required where `../shared` exists, a loud skip in a clone
//! without it (as the corpora).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{is_root, require};

const REGISTRY: &str = "127.0.0.1:5000";

/// Whether the anchor registry answers `GET /v2/` with 200.
fn registry_up() -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&REGISTRY.parse().expect("addr"), Duration::from_secs(2))
    else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:5000\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).contains(" 200 ")
}

#[test]
fn realworld_offline_cases_match_buildkit() {
    // The recorded BuildKit results were built on the steering side's anchor bases
    // (../shared/bench/setup.sh: busybox and debian:bookworm-slim on 127.0.0.1:5000). Where
    // ../shared exists they are required; a newcomer's clone without it skips loudly, as for
    // the conformance corpora (RBUILD_REQUIRE_CORPORA=1 makes that a failure too).
    let shared = rbuild_test_support::corpus::conformance_dir().is_some()
        || std::env::var_os(rbuild_test_support::corpus::REQUIRE_CORPORA).is_some_and(|v| v == "1");
    if !shared {
        eprintln!(
            "SKIPPED: realworld_offline_cases_match_buildkit because ../shared (the anchor \
             base images its BuildKit results were recorded on) is not beside this checkout"
        );
        return;
    }
    if !require("root (RUN needs the sandbox)", is_root())
        || rbuild_test_support::skip::require_tool("python3").is_none()
        || !require(
            "the anchor registry on 127.0.0.1:5000 (../shared/bench/setup.sh)",
            registry_up(),
        )
    {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/realworld.py");
    let status = Command::new("python3")
        .arg(&script)
        .args(["--reference", "recorded", "--offline", "--rbuild"])
        .arg(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--work")
        .arg(work.path())
        .env_remove("RBUILD_ROOT")
        .env_remove("RBUILD_CONFIG")
        .status()
        .expect("run python3 scripts/realworld.py");
    assert!(
        status.success(),
        "realworld: cases differ from BuildKit ({status}; the FAIL lines above say how; \
         see testdata/realworld/KNOWN_GAPS.md)"
    );
}
