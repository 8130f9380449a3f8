#!/usr/bin/env bash
# RUN --mount=type=bind of the whole build context (the lowering copies the context into a
# File vertex on scratch that the RUN mounts; BuildKit mounts its context snapshot directly):
# rbuild against BuildKit (dockerd's embedded BuildKit), interleaved in one run, plus rbuild
# with `COPY . /ctx` + the same RUN as the layer-writing alternative. Warm, uncached: each
# tool builds once untimed (base image pulled, context known: rbuild's stat cache, BuildKit's
# incremental context transfer), then every timed build uses --no-cache, so each one
# re-checks the context and re-runs every step. Before each timed build: `sync` and 2 s of
# rest. Prints per-run wall seconds and medians.
#
#   RUNS=3 FILES=5000 RBUILD=target/release/rbuild benches/run_mount_bind/run.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
RUNS=${RUNS:-3}
FILES=${FILES:-5000}
RBUILD=${RBUILD:-$(dirname "$0")/../../target/release/rbuild}
DATA=${DATA:-/var/tmp/rbuild-mount-bench}
CTX=$DATA/ctx
CTXCOPY=$DATA/ctx-copy

curl -fsS http://127.0.0.1:5000/v2/ >/dev/null ||
  { echo "run.sh: no registry on 127.0.0.1:5000 (run ../shared/bench/setup.sh)" >&2; exit 1; }

if [ "$(cat "$DATA/files" 2>/dev/null)" != "$FILES" ]; then
  rm -rf "$DATA" && mkdir -p "$CTX"
  text_tree "$CTX" "$FILES"
  cp -a "$CTX" "$CTXCOPY"
  printf 'FROM busybox\nRUN --mount=type=bind,target=/ctx find /ctx -type f | wc -l > /count\n' \
    > "$CTX/Dockerfile"
  printf 'FROM busybox\nCOPY . /ctx\nRUN find /ctx -type f | wc -l > /count\n' > "$CTXCOPY/Dockerfile"
  echo "$FILES" > "$DATA/files"
fi
echo "context: $(du -sh "$CTX" | cut -f1), $FILES files"

export RBUILD_CONFIG=$DATA/config.toml
mirror_config "$RBUILD_CONFIG"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
: > "$DATA/mount.t"; : > "$DATA/copy.t"; : > "$DATA/docker.t"
stores=""
timed() { # file, command...
  local out=$1; shift
  sync; sleep 2
  local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >> "$out"
}
s1=$(mktemp -d /var/tmp/rbuild-mount-store.XXXX); s2=$(mktemp -d /var/tmp/rbuild-mount-store.XXXX)
stores="$s1 $s2"
RBUILD_ROOT="$s1" "$RBUILD" build -q -t mountbench "$CTX" >/dev/null
RBUILD_ROOT="$s2" "$RBUILD" build -q -t mountbench "$CTXCOPY" >/dev/null
DOCKER_BUILDKIT=1 /usr/bin/docker build --network=none -q -t mountbench "$CTX" >/dev/null
for _ in $(seq "$RUNS"); do
  timed "$DATA/mount.t" env RBUILD_ROOT="$s1" "$RBUILD" build --no-cache -q -t mountbench "$CTX"
  timed "$DATA/copy.t" env RBUILD_ROOT="$s2" "$RBUILD" build --no-cache -q -t mountbench "$CTXCOPY"
  timed "$DATA/docker.t" env DOCKER_BUILDKIT=1 /usr/bin/docker build --no-cache --network=none \
    -q -t mountbench "$CTX"
done
# Deleted only now: on this discard-mounted ext4 deleting stores slows the next creates.
rm -rf $stores
m=$(median < "$DATA/mount.t"); c=$(median < "$DATA/copy.t"); d=$(median < "$DATA/docker.t")
echo "rbuild RUN --mount=type=bind runs: $(tr '\n' ' ' < "$DATA/mount.t")"
echo "rbuild COPY . + RUN runs:          $(tr '\n' ' ' < "$DATA/copy.t")"
echo "BuildKit RUN --mount runs:         $(tr '\n' ' ' < "$DATA/docker.t")"
echo "median: rbuild mount ${m}s, rbuild COPY ${c}s, BuildKit mount ${d}s"
echo "ratio rbuild/BuildKit (mount) $(echo "scale=2; $m / $d" | bc)," \
  "rbuild mount/COPY $(echo "scale=2; $m / $c" | bc)"
