#!/usr/bin/env bash
# The floor of a sandboxed `RUN true` (issue 17, item 3): the kernel work a RUN cannot avoid
# (clone into new namespaces, an overlay of a busybox lower with a fresh upper, /proc,
# pivot_root, exec of /bin/true as pid 1, wait, teardown, removal of the upper), phase by
# phase, medians of RUNS iterations per variant; see crates/sandbox/benches/floor.rs.
#
#   RUNS=200 benches/run_step/floor.sh
#
# Needs root and busybox-static. Environment: RUNS ([200]).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
echo "floor: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$REPO" && RUNS=${RUNS:-200} cargo bench -q -p rbuild-sandbox --bench floor)
echo "floor: done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
