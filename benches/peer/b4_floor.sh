#!/usr/bin/env bash
# The floor of B4cold (issue 17 item 2): how much of a cold B4 build is its RUN commands' own
# time — from each command's exec to its exit, as the sandbox's trace (RBUILD_SANDBOX_TRACE)
# reports it, inside the build, on the build's overlayfs — and how much is rbuild's (process,
# sandbox set-up, COPYs, commits, the image). The commands' time is what any builder pays
# (`useradd`, 31 × `dd | tr`, 500 files written, `chown -R` copying every file up): no builder
# can be faster than it. Cold runs as benches/peer/bench.sh makes them (image removed, cache
# pruned, base kept).
#
#   RUNS=10 benches/peer/b4_floor.sh        (after benches/peer/bench.sh made its data)
#
# (Running the same commands by chroot in overlay mounts of a script's own was tried as a
# builder-less floor: its mounts, chroots and unmounts cost more than rbuild's whole sandbox,
# so it bounded nothing.) Environment: RUNS [10], RBUILD (binary; built when unset), WORK
# [/var/tmp/rbuild-peer]. Root.
set -euo pipefail
. "$(dirname "$0")/env.sh"
RUNS=${RUNS:-10}
use_rbuild
B4=$BENCH_DATA/b4
[ -f "$B4/Dockerfile" ] || { echo "b4_floor: no $B4 (run benches/peer/bench.sh first)" >&2; exit 1; }
F=$WORK/b4-floor
rm -rf "$F" && mkdir -p "$F"
echo "b4_floor: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$RUNS"); do
  "$RBUILD" rmi rb-b4 >/dev/null 2>&1 || true
  "$RBUILD" prune --all >/dev/null
  sync
  start=$(date +%s%N)
  RBUILD_SANDBOX_TRACE=$F/trace.$i "$RBUILD" build -q -t rb-b4 "$B4" >/dev/null
  end=$(date +%s%N)
  awk -v wall=$(((end - start) / 1000)) '
    /command: exec/ { at = $2 }
    /pid1: command exited/ { cmd += $2 - at; runs++ }
    END { printf "%d %d %d\n", wall, cmd, runs }' "$F/trace.$i" >> "$F/runs.txt"
done
echo "b4_floor: done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
sort -n "$F/runs.txt" | awk '
  { wall[NR] = $1; cmd[NR] = $2; rest[NR] = $1 - $2; runs = $3 }
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    n = NR
    printf "B4cold, medians of %d traced builds: wall %.0f ms, its %d RUN commands %.0f ms, the rest (rbuild) %.0f ms\n",
      n, median(wall, n) / 1000, runs, median(cmd, n) / 1000, median(rest, n) / 1000
  }'
