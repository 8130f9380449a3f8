#!/usr/bin/env bash
# RUN --mount=type=cache as a package cache: the RUN fills /cache with FILES small files the first
# time ("downloads"), and every run copies them into the image (/opt/pkgs). A stamp file copied
# before the RUN changes on every build, so the RUN runs each time; "warm" builds find the cache
# full. rbuild against BuildKit (dockerd's embedded BuildKit), interleaved in one run: one cold
# build each (rbuild: fresh store holding only the base image; BuildKit: `docker builder prune -af` first, which also drops
# its cache mounts), then RUNS warm builds each. Before each timed build: `sync` and 2 s of rest.
# Prints per-run wall seconds, medians and the rbuild/BuildKit ratios.
#
#   RUNS=5 FILES=3000 RBUILD=target/release/rbuild benches/cache_mount/run.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
RUNS=${RUNS:-5}
FILES=${FILES:-3000}
RBUILD=${RBUILD:-$(dirname "$0")/../../target/release/rbuild}
DATA=${DATA:-/var/tmp/rbuild-cache-mount-bench}
CTX=$DATA/ctx

curl -fsS http://127.0.0.1:5000/v2/ >/dev/null ||
  { echo "run.sh: no registry on 127.0.0.1:5000 (run ../shared/bench/setup.sh)" >&2; exit 1; }

rm -rf "$DATA" && mkdir -p "$CTX"
cat > "$CTX/Dockerfile" <<DF
FROM busybox
COPY stamp /stamp
RUN --mount=type=cache,target=/cache,id=rbuild-bench-pkgs \\
    if [ ! -f /cache/done ]; then mkdir -p /cache/pkgs && cd /cache/pkgs && \\
      s=\$(cat /stamp) && i=0 && \\
      while [ \$i -lt $FILES ]; do echo "package \$i \$s" > p\$i; i=\$((i+1)); done && \\
      touch /cache/done; fi && mkdir -p /opt && cp -a /cache/pkgs /opt/pkgs
DF

export RBUILD_CONFIG=$DATA/config.toml
mirror_config "$RBUILD_CONFIG"
STORE=$(mktemp -d /var/tmp/rbuild-cache-mount-store.XXXX)

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
timed() { # file, command...
  local out=$1; shift
  date +%s%N > "$CTX/stamp"
  sync; sleep 2
  local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >> "$out"
}
rb() { env RBUILD_ROOT="$STORE" "$RBUILD" build -q -t cachemountbench "$CTX"; }
dk() { env DOCKER_BUILDKIT=1 /usr/bin/docker build --network=none -q -t cachemountbench "$CTX"; }

# Both start with the base image at hand (BuildKit has it from earlier runs).
env RBUILD_ROOT="$STORE" "$RBUILD" pull -q busybox >/dev/null
/usr/bin/docker builder prune -af >/dev/null
timed "$DATA/rbuild-cold.t" rb
timed "$DATA/docker-cold.t" dk
for _ in $(seq "$RUNS"); do
  timed "$DATA/rbuild-warm.t" rb
  timed "$DATA/docker-warm.t" dk
done
# Check: the image has the files, the cache directory is not in it.
n=$(env RBUILD_ROOT="$STORE" "$RBUILD" build -q -o type=tar,dest=- "$CTX" | tar -t | grep -c '^opt/pkgs/p')
[ "$n" = "$FILES" ] || { echo "run.sh: expected $FILES files under /opt/pkgs, got $n" >&2; exit 1; }
env RBUILD_ROOT="$STORE" "$RBUILD" du | grep 'cache mounts'
rm -rf "$STORE"

rc=$(cat "$DATA/rbuild-cold.t"); dc=$(cat "$DATA/docker-cold.t")
rw=$(median < "$DATA/rbuild-warm.t"); dw=$(median < "$DATA/docker-warm.t")
echo "files: $FILES; runs: $RUNS"
echo "cold: rbuild ${rc}s, BuildKit ${dc}s, ratio $(echo "scale=2; $rc / $dc" | bc)"
echo "warm rbuild runs:   $(tr '\n' ' ' < "$DATA/rbuild-warm.t")"
echo "warm BuildKit runs: $(tr '\n' ' ' < "$DATA/docker-warm.t")"
echo "warm median: rbuild ${rw}s, BuildKit ${dw}s, ratio $(echo "scale=2; $rw / $dw" | bc)"
