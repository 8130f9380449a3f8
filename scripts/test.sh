#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test of the workspace (unit, golden,
# conformance corpora, integration tests against a real sandbox, a registry of their own and
# real tools). Conformance and integration tests print their `N passed, N failed` lines; the
# end shows the totals and every SKIPPED line (with RBUILD_REQUIRE_ALL=1 a skip fails its test,
# except the conformance corpora when ../shared is not checked out; see
# crates/test-support/src/corpus.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace -- --nocapture 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
grep -o 'SKIPPED: .*' "$log" | sort | uniq -c || true
exit "$status"
