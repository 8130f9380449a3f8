#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test of the workspace (unit, golden,
# conformance corpora, integration tests against a real sandbox, registry and tools).
# Conformance and integration tests print their `N passed, N failed` lines.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace -- --nocapture
