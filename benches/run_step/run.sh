#!/usr/bin/env bash
# What one RUN step costs inside a build (issue 17 item 3), against `runc run`, in the same run:
#   rbuild   `rbuild build --no-cache` of `FROM busybox` + 21 × `RUN true` minus the same with 1
#            RUN, divided by 20: a step's whole cost in a build (key, sandbox, layer, record);
#   runc     20 × `runc run` of a busybox bundle (`true`), divided by 20.
# Goal: rbuild's step ≥ 10× cheaper than runc's. The base image is the test fixture's busybox
# (an OCI layout, read through --build-context), so nothing is pulled.
#
#   RUNS=10 benches/run_step/run.sh
#   RUNS=10 NETWORK=none benches/run_step/run.sh     # the builds with --network=none
#
# Environment: RUNS (hyperfine runs, [10]), RBUILD (binary; built when unset), WORK
# ([/var/tmp/rbuild-run-step]), NETWORK (rbuild's --network for every RUN: default, none or
# host [default]; runc's bundle always has a network namespace with lo only). Needs root,
# runc, umoci, hyperfine, jq. The kernel's floor for such a step: benches/run_step/floor.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-10}
WORK=${WORK:-/var/tmp/rbuild-run-step}
NETWORK=${NETWORK:-default}
case $NETWORK in default|none|host) ;; *) echo "run_step: NETWORK=$NETWORK: default, none or host" >&2; exit 2;; esac
OUT=$WORK/results/$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
for t in hyperfine jq runc umoci; do
  command -v $t >/dev/null || { echo "run_step: $t is not installed" >&2; exit 1; }
done
. "$HERE/../lib.sh"
rbuild_and_fixture_busybox "$REPO"

for n in 1 21; do
  mkdir -p "$WORK/ctx$n"
  { echo "FROM busybox"; for i in $(seq "$n"); do echo "RUN true # $i"; done; } > "$WORK/ctx$n/Dockerfile"
done
rm -rf "$WORK/bundle" && umoci unpack --rootless --image "$BUSYBOX:latest" "$WORK/bundle" >/dev/null 2>&1 \
  || umoci unpack --image "$BUSYBOX:latest" "$WORK/bundle" >/dev/null
jq '.process.args = ["/bin/true"] | .process.terminal = false' "$WORK/bundle/config.json" > "$WORK/bundle/c.json"
mv "$WORK/bundle/c.json" "$WORK/bundle/config.json"
cat > "$WORK/runc20.sh" <<SH
#!/bin/sh
for i in \$(seq 20); do runc run -b "$WORK/bundle" rbuild-run-step-\$\$-\$i >/dev/null || exit 1; done
SH
chmod +x "$WORK/runc20.sh"

export RBUILD_ROOT=$WORK/store RBUILD_CONFIG=$WORK/config.toml
: > "$RBUILD_CONFIG"
build() { echo "$RBUILD build -q --no-cache --network=$NETWORK --build-context busybox=oci-layout://$BUSYBOX:latest $WORK/ctx$1"; }
"$RBUILD" build -q --build-context "busybox=oci-layout://$BUSYBOX:latest" "$WORK/ctx1" >/dev/null
echo "run_step: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), network $NETWORK" | tee "$OUT/meta.txt"
hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$OUT/h.json" \
  -n rbuild-1 "$(build 1)" -n rbuild-21 "$(build 21)" -n runc-20 "$WORK/runc20.sh" > "$OUT/hyperfine.log" 2>&1 \
  || { cat "$OUT/hyperfine.log"; exit 1; }
echo "run_step: done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/meta.txt"
jq -r '.results | map({(.command): .median}) | add
  | "rbuild step: \(((.["rbuild-21"] - .["rbuild-1"]) / 20 * 1000 * 100 | round) / 100) ms (builds: 1 RUN \(.["rbuild-1"] * 1000 | round) ms, 21 RUNs \(.["rbuild-21"] * 1000 | round) ms)\nrunc run: \((.["runc-20"] / 20 * 1000 * 100 | round) / 100) ms\nratio (runc / rbuild step): \(((.["runc-20"] / 20) / ((.["rbuild-21"] - .["rbuild-1"]) / 20) * 100 | round) / 100)×"' \
  "$OUT/h.json" | tee "$OUT/summary.txt"
