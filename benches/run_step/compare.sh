#!/usr/bin/env bash
# A RUN step against its floors in the same minutes (issue 17, item 3): floor.sh (the bare
# floor's variants and the feature-parity floor), run.sh (rbuild's step in a build and
# `runc run`), floor.sh again, then trace.py over TRACES traced 21-step builds (rbuild's step
# phase by phase). All in one session at autogroup nice NICE, as benches/README.md's figures
# (this kernel shares CPU per session: a session of its own at -15 sees what an unshared
# machine would).
#
#   benches/run_step/compare.sh
#   NICE= FLOOR_RUNS=300 STEP_RUNS=20 benches/run_step/compare.sh    # at normal priority
#
# Environment: NICE ([-15]; empty: the caller's session and priority), FLOOR_RUNS ([200]),
# STEP_RUNS ([10]), TRACES ([3]), NETWORK ([default]), WORK ([/var/tmp/rbuild-run-step]),
# RBUILD (binary; built when unset). The floors' layers and upper dirs are made under WORK,
# where rbuild's store and runc's bundle are: WORK=/dev/shm/… compares all three without the
# disk. Needs what floor.sh and run.sh need. The whole output is also written to
# $WORK/results/compare-<time>.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NICE=${NICE--15}
if [ -n "$NICE" ] && [ -z "${RUN_STEP_SESSION:-}" ]; then
  exec setsid -w env RUN_STEP_SESSION=1 "$0" "$@"
fi
[ -z "$NICE" ] || echo "$NICE" > /proc/self/autogroup
export WORK=${WORK:-/var/tmp/rbuild-run-step} NETWORK=${NETWORK:-default}
mkdir -p "$WORK/results"
export FLOOR_DIR=$WORK
LOG=$WORK/results/compare-$(date -u +%Y%m%d-%H%M%S).txt
. "$HERE/../lib.sh"
rbuild_and_fixture_busybox "$REPO"
export RBUILD

traced_builds() {
  local traces=() t
  for i in $(seq "${TRACES:-3}"); do
    t=$WORK/trace$i
    rm -f "$t"
    RBUILD_SANDBOX_TRACE=$t RBUILD_ROOT=$WORK/store RBUILD_CONFIG=$WORK/config.toml \
      "$RBUILD" build -q --no-cache --network="$NETWORK" \
      --build-context "busybox=oci-layout://$BUSYBOX:latest" "$WORK/ctx21" >/dev/null
    traces+=("$t")
  done
  echo "trace: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), network $NETWORK"
  python3 "$HERE/trace.py" "${traces[@]}"
}

{
  echo "compare: $(git -C "$REPO" rev-parse --short HEAD), autogroup nice ${NICE:-unchanged}"
  RUNS=${FLOOR_RUNS:-200} "$HERE/floor.sh"
  RUNS=${STEP_RUNS:-10} "$HERE/run.sh"
  RUNS=${FLOOR_RUNS:-200} "$HERE/floor.sh"
  traced_builds
} 2>&1 | tee "$LOG"
