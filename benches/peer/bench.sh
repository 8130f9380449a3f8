#!/bin/bash
# Peer benchmark of rbuild (issue 6): times rbuild beside BuildKit and buildah on B1-B4 with
# hyperfine and prints medians and the ratios rbuild/peer against the goals.
#
#   benches/peer/bench.sh                               # all tools, all benches, RUNS=3
#   RUNS=5 BENCHES="B1 B2" TOOLS="rbuild docker" benches/peer/bench.sh
#
# Environment:
#   RUNS        hyperfine runs per (bench, tool)                               [3]
#   TOOLS       any of: rbuild docker buildah                                  [all three]
#   BENCHES     any of: B1 B2 B3cold B3touch B4cold B4warm                     [all]
#   RBUILD      the rbuild binary; built with `cargo build --release -p rbuild` when unset
#   WORK        scratch dir: store, config, contexts, results                  [/var/tmp/rbuild-peer]
#   RSS         1: also measure rbuild's peak RSS on B3cold/B3touch (/usr/bin/time)  [1]
#   DROP_CACHES 1: drop the page cache before each cold run                     [0]
#
# Needs the peers, the local registry (127.0.0.1:5000 mirroring Docker Hub) and dockerd as set
# up by ../../../shared/bench/setup.sh, plus hyperfine and jq.
#
# "cold": everything the tool built is removed and its build cache pruned before each run;
# base images stay (rbuild keeps them through two tagged images, rb-keep-busybox and
# rb-keep-debian, made once). "warm"/B2: a no-op rebuild. B3touch: 19 bytes of one kept file
# change before each run. The page cache is not dropped unless DROP_CACHES=1.
set -euo pipefail
. "$(dirname "$0")/env.sh"
RUNS=${RUNS:-3}
TOOLS=${TOOLS:-"rbuild docker buildah"}
BENCHES=${BENCHES:-"B1 B2 B3cold B3touch B4cold B4warm"}
RSS=${RSS:-1}
OUT=$WORK/results/$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

for tool in hyperfine jq; do
  command -v $tool >/dev/null || { echo "bench.sh: $tool is not installed" >&2; exit 1; }
done
curl -fsS http://127.0.0.1:5000/v2/ >/dev/null ||
  { echo "bench.sh: no registry on 127.0.0.1:5000 (run ../shared/bench/setup.sh)" >&2; exit 1; }

use_rbuild

python3 "$HERE/gen.py" > "$OUT/gen.log"

# Base images that every tool keeps across cold runs.
if [[ " $TOOLS " == *" rbuild "* ]]; then
  for base in busybox debian:bookworm-slim; do
    name=rb-keep-${base%%:*}
    printf 'FROM %s\n' "$base" | "$RBUILD" build -q -t "$name" -f - "$BENCH_DATA/b1" >/dev/null
  done
fi
if [[ " $TOOLS " == *" buildah "* ]]; then
  buildah pull -q busybox >/dev/null && buildah pull -q debian:bookworm-slim >/dev/null
fi

TOUCHED=$BENCH_DATA/b3/src/pkg000/mod00/file_00000.txt
DROP=""; [ "${DROP_CACHES:-0}" = 1 ] && DROP="; echo 3 > /proc/sys/vm/drop_caches"

build_cmd() {  # tool ctx tag
  case $1 in
    rbuild)  echo "$RBUILD build -q -t $3 $2 >/dev/null" ;;
    docker)  echo "DOCKER_BUILDKIT=1 $DOCKER build --network=none -q -t $3 $2 >/dev/null" ;;
    buildah) echo "buildah bud --layers --pull=false --network=none -q -t $3 $2 >/dev/null" ;;
  esac
}
cold_cmd() {   # tool: remove what the tool built and its build cache; keep base images
  case $1 in
    rbuild)  echo "for t in rb-b1 rb-b3 rb-b4; do $RBUILD rmi \$t >/dev/null 2>&1; done; $RBUILD prune --all >/dev/null; sync$DROP" ;;
    docker)  echo "$DOCKER images --format '{{.Repository}}:{{.Tag}}' | grep '^rb-' | xargs -r $DOCKER rmi -f >/dev/null; $DOCKER image prune -f >/dev/null; $DOCKER builder prune -af >/dev/null; sync$DROP" ;;
    # only our tags and then dangling (layer cache) images: other users' images stay
    buildah) echo "buildah images -n --format '{{.Name}}:{{.Tag}}' | grep '/rb-b' | xargs -r buildah rmi -f >/dev/null 2>&1; buildah rmi --prune >/dev/null 2>&1; sync$DROP" ;;
  esac
}
touch_cmd="printf '%s' \"\$(date +%s%N)\" | dd of=$TOUCHED conv=notrunc status=none; sync"

ctx_of() { case $1 in B1|B2) echo "$BENCH_DATA/b1";; B3*) echo "$BENCH_DATA/b3";; B4*) echo "$BENCH_DATA/b4";; esac; }
tag_of() { case $1 in B1|B2) echo rb-b1;; B3*) echo rb-b3;; B4*) echo rb-b4;; esac; }

declare -A MED
run_one() {  # bench tool
  local b=$1 t=$2 json=$OUT/$1-$2.json
  local args=(--runs "$RUNS" --export-json "$json" --style basic)
  case $b in
    B1|B3cold|B4cold) args+=(--prepare "$(cold_cmd "$t")") ;;
    B2|B4warm)        args+=(--warmup 1) ;;
    B3touch)          args+=(--warmup 1 --prepare "$touch_cmd") ;;
  esac
  echo "== $b / $t   (loadavg before: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  if hyperfine "${args[@]}" "$(build_cmd "$t" "$(ctx_of "$b")" "$(tag_of "$b")")" > "$OUT/$b-$t.log" 2>&1; then
    MED[$b,$t]=$(jq -r '.results[0].median * 1000 | round / 1000' "$json")
    echo "   median ${MED[$b,$t]} s   (min/max: $(jq -r '.results[0] | "\(.min*1000|round/1000)/\(.max*1000|round/1000)"' "$json"))" >&2
  else
    MED[$b,$t]=FAIL; tail -5 "$OUT/$b-$t.log" >&2
  fi
}

for b in $BENCHES; do
  for t in $TOOLS; do run_one "$b" "$t"; done
done

# rbuild's peak RSS on B3 (one cold run, one touched run), outside hyperfine.
RSS_LINE=""
if [ "$RSS" = 1 ] && [[ " $TOOLS " == *" rbuild "* ]] && [[ "$BENCHES" == *B3* ]]; then
  rss() { /usr/bin/time -f %M -o "$OUT/rss-$1.txt" "$RBUILD" build -q -t rb-b3 "$BENCH_DATA/b3" >/dev/null; echo "$(( $(cat "$OUT/rss-$1.txt") / 1024 ))"; }
  sh -c "$(cold_cmd rbuild)"   # not eval: its rmi of absent names fails, and set -e is on
  cold=$(rss cold) || cold=FAIL
  sh -c "$touch_cmd"
  touched=$(rss touch) || touched=FAIL
  RSS_LINE="rbuild peak RSS on B3: cold ${cold} MB, touch ${touched} MB (goal < 150 MB)"
fi

ratio() {  # a b -> a/b with 2 decimals, or "-"
  if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && [ "$2" != 0 ]; then
    echo "$1 $2" | awk '{printf "%.2f", $1/$2}'
  else echo "-"; fi
}
goal_of() { case $1 in B1) echo 1.0;; B2) echo 0.5;; B3cold|B3touch) echo 0.3;; B4cold) echo 0.7;; B4warm) echo 0.5;; esac; }

{
  echo "# rbuild peer benchmark $(date -u +%FT%TZ), $(nproc) CPUs, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), runs=$RUNS"
  echo "# rbuild $(git -C "$REPO" rev-parse --short HEAD), docker/dockerd $($DOCKER version -f '{{.Server.Version}}' 2>/dev/null || echo -), buildah $(buildah --version 2>/dev/null | awk '{print $3}'); median wall seconds"
  printf '| %-8s |' bench; for t in $TOOLS; do printf ' %-8s |' "$t"; done
  echo ' rbuild/BuildKit | goal  | rbuild/buildah |'
  printf '|----------|'; for t in $TOOLS; do printf '%s|' "----------"; done; echo '-----------------|-------|----------------|'
  for b in $BENCHES; do
    printf '| %-8s |' "$b"; for t in $TOOLS; do printf ' %-8s |' "${MED[$b,$t]:-}"; done
    rk=$(ratio "${MED[$b,rbuild]:-}" "${MED[$b,docker]:-}")
    rh=$(ratio "${MED[$b,rbuild]:-}" "${MED[$b,buildah]:-}")
    printf ' %-15s | %-5s | %-14s |\n' "$rk" "≤ $(goal_of "$b")" "$rh"
  done
  if [ -n "$RSS_LINE" ]; then echo "$RSS_LINE"; fi
} | tee "$OUT/table.md"
echo "(hyperfine JSON and logs: $OUT)"
