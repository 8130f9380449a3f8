#!/usr/bin/env bash
# How rbuild's cost grows (issue 17 item 5): wall time and peak RSS of a cold build along four
# axes, each point one build with an empty store (median of RUNS), then `plot.py` draws the
# curves (log-log, with a line of slope 1 through the first point: a curve that bends above it
# grows faster than linearly) as results/<date>/scaling.svg beside a table (scaling.md).
#
#   files     `FROM scratch` + `COPY . /app` of a context of N files (100 bytes each, 100 per
#             directory): walking, hashing, copying and tarring.         N = 1k 10k 100k 1M
#   stages    N independent `FROM busybox` stages with one RUN each, then a final stage that
#             copies one file from each: scheduling and the sandbox.     N = 1 4 16 64
#   instrs    `FROM scratch`, N-1 instructions that make no layer (ENV, LABEL using the last ENV,
#             ARG, EXPOSE in turn) and one COPY: parsing, lowering (each ENV sees all earlier
#             ones), keying and the config. (10,000 *layers* is no real image: Docker and
#             BuildKit stop near 128 overlay layers.)                    N = 10 100 1k 10k
#   layer     `FROM scratch` + `COPY big /big` of one file of N MB of random bytes: one layer's
#             copy, tar and digest.                                      N = 10 100 500 2000
#
# Cold means a fresh store for every run (the base image comes from an OCI layout through
# --build-context, as a lazy base: nothing is pulled over a network). No output (-o) is asked
# for: the image goes to the store, as `rbuild -t app .` does.
#
#   RUNS=3 benches/scaling/run.sh
#   AXES="files layer" RUNS=1 RBUILD=target/release/rbuild benches/scaling/run.sh
#
# Environment:
#   RUNS   runs per point (median)                                       [3]
#   AXES   any of: files stages instrs layer                             [all]
#   RBUILD the rbuild binary; built with `cargo build --release -p rbuild` when unset
#   WORK   scratch dir (contexts are kept between runs of the script)    [/var/tmp/rbuild-scaling]
# Needs root (RUN), python3 and GNU time (/usr/bin/time). ~4 GB of disk for the 1M-file
# context and ~6 GB while the 2 GB layer is built.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-3}
AXES=${AXES:-"files stages instrs layer"}
WORK=${WORK:-/var/tmp/rbuild-scaling}
OUT=$WORK/results/$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT" "$WORK/ctx"
[ -x /usr/bin/time ] || { echo "scaling: GNU time (/usr/bin/time) is not installed" >&2; exit 1; }
. "$HERE/../lib.sh"
rbuild_and_fixture_busybox "$REPO"
export RBUILD_CONFIG=$WORK/config.toml
: > "$RBUILD_CONFIG"

# ctx_files N: N files of 100 bytes, 100 to a directory.
ctx_files() {
  local dir=$WORK/ctx/files-$1
  [ -f "$dir/.complete" ] && { echo "$dir"; return; }
  rm -rf "$dir" && mkdir -p "$dir"
  python3 - "$dir" "$1" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%05d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%07d" % i), "wb") as f:
        f.write(b"%099d\n" % i)
with open(os.path.join(root, "Dockerfile"), "w") as f:
    f.write("FROM scratch\nCOPY . /app\n")
with open(os.path.join(root, ".dockerignore"), "w") as f:
    f.write(".complete\n")
PY
  touch "$dir/.complete"
  echo "$dir"
}

ctx_stages() {
  local dir=$WORK/ctx/stages-$1
  rm -rf "$dir" && mkdir -p "$dir"
  {
    for i in $(seq "$1"); do printf 'FROM busybox AS s%d\nRUN echo %d > /out\n' "$i" "$i"; done
    echo "FROM scratch"
    for i in $(seq "$1"); do printf 'COPY --from=s%d /out /out%d\n' "$i" "$i"; done
  } > "$dir/Dockerfile"
  echo "$dir"
}

ctx_instrs() {
  local dir=$WORK/ctx/instrs-$1
  rm -rf "$dir" && mkdir -p "$dir"
  echo data > "$dir/f"
  python3 - "$dir" "$1" <<'PY'
import sys
root, n = sys.argv[1], int(sys.argv[2])
kinds = ["ENV V{i}=v{i}", "LABEL l{i}=\"$V{j}\"", "ARG A{i}=a{i}", "EXPOSE {p}"]
lines = ["FROM scratch"]
for i in range(n - 1):
    lines.append(kinds[i % 4].format(i=i, j=max(i - 1, 0), p=1024 + i))
lines.append("COPY f /f")
open(root + "/Dockerfile", "w").write("\n".join(lines) + "\n")
PY
  echo "$dir"
}

ctx_layer() {
  local dir=$WORK/ctx/layer-$1
  [ -f "$dir/.complete" ] && { echo "$dir"; return; }
  rm -rf "$dir" && mkdir -p "$dir"
  head -c "$(($1 * 1000000))" /dev/urandom > "$dir/big"
  printf 'FROM scratch\nCOPY big /big\n' > "$dir/Dockerfile"
  echo .complete > "$dir/.dockerignore"
  touch "$dir/.complete"
  echo "$dir"
}

# forget_store DIR: removes a store and, when it held many files, waits out ext4's
# `recently_deleted` window (30 s; on a filesystem without a journal, as this VM's, creating
# an inode scans past every inode freed that recently in its block group, which makes the next
# run's COPY of a million files several times slower than its files alone explain: seen at
# 1M files, 358 s right after a delete). The curve is rbuild's growth, not the allocator's.
forget_store() {
  [ -d "$1" ] || return 0
  local n
  n=$(find "$1" -xdev 2>/dev/null | head -200001 | wc -l || true)
  rm -rf "$1"
  sync
  if [ "$n" -gt 200000 ]; then sleep 35; fi
}

points() {
  case $1 in
    files) echo 1000 10000 100000 1000000 ;;
    stages) echo 1 4 16 64 ;;
    instrs) echo 10 100 1000 10000 ;;
    layer) echo 10 100 500 2000 ;;
  esac
}

RESULTS=$OUT/results.tsv
printf 'axis\tn\tseconds\tpeak_rss_kb\truns\n' > "$RESULTS"
echo "scaling: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), rbuild $($RBUILD --version)" | tee "$OUT/meta.txt"
for axis in $AXES; do
  for n in $(points "$axis"); do
    ctx=$(ctx_"$axis" "$n")
    times=() rss=()
    for r in $(seq "$RUNS"); do
      store=$WORK/store
      forget_store "$store"
      if ! RBUILD_ROOT=$store /usr/bin/time -f '%e %M' -o "$OUT/time" \
          "$RBUILD" build -q --build-context "busybox=oci-layout://$BUSYBOX:latest" "$ctx" \
          > /dev/null 2> "$OUT/$axis-$n.log"; then
        echo "scaling: $axis=$n failed:" >&2; tail -20 "$OUT/$axis-$n.log" >&2; exit 1
      fi
      read -r t m < <(tail -1 "$OUT/time")
      times+=("$t") rss+=("$m")
    done
    med_t=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    med_m=$(printf '%s\n' "${rss[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '%s\t%s\t%s\t%s\t%s\n' "$axis" "$n" "$med_t" "$med_m" "${times[*]}" | tee -a "$RESULTS"
  done
done
forget_store "$WORK/store"
echo "scaling: done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/meta.txt"
python3 "$HERE/plot.py" "$RESULTS" "$OUT/scaling.svg" > "$OUT/scaling.md"
cat "$OUT/scaling.md"
echo "scaling: $OUT/scaling.svg"
