#!/usr/bin/env bash
# ADD of a local .tar.gz (extracted into the image, cold, FROM scratch): rbuild against
# BuildKit (dockerd's embedded BuildKit) and a bare GNU `tar -xzf` floor, interleaved in one
# run. Prints per-run wall seconds and the
# medians. Each rbuild run uses a fresh store (all deleted after the runs); each docker run
# uses --no-cache. Before each timed build: `sync` and 2 s of rest, so that neither tool pays
# for the other's writeback.
#
#   RUNS=3 FILES=10000 RBUILD=target/release/rbuild benches/add_unpack/run.sh
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
RUNS=${RUNS:-3}
FILES=${FILES:-10000}
RBUILD=${RBUILD:-$(dirname "$0")/../../target/release/rbuild}
DATA=${DATA:-/var/tmp/rbuild-add-bench}
CTX=$DATA/ctx

if [ ! -f "$CTX/big.tgz" ] || [ "$(cat "$DATA/files" 2>/dev/null)" != "$FILES" ]; then
  rm -rf "$DATA" && mkdir -p "$CTX" "$DATA/tree"
  text_tree "$DATA/tree" "$FILES"
  tar -C "$DATA/tree" -czf "$CTX/big.tgz" .
  printf 'FROM scratch\nADD big.tgz /data/\n' > "$CTX/Dockerfile"
  echo "$FILES" > "$DATA/files"
fi
echo "context: $(du -sh "$CTX/big.tgz" | cut -f1) gzip, $(du -sh "$DATA/tree" | cut -f1) extracted, $FILES files"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
: > "$DATA/rbuild.t"; : > "$DATA/docker.t"; : > "$DATA/tar.t"
for i in $(seq "$RUNS"); do
  store=$(mktemp -d /var/tmp/rbuild-add-store.XXXX)
  sync; sleep 2
  t0=$(now); RBUILD_ROOT=$store "$RBUILD" build -q -t addbench "$CTX" >/dev/null; t1=$(now)
  stores="${stores:-} $store"
  echo "$t1 - $t0" | bc >> "$DATA/rbuild.t"
  sync; sleep 2
  x=$(mktemp -d /var/tmp/rbuild-add-tar.XXXX)
  t0=$(now); tar -xzf "$CTX/big.tgz" -C "$x"; t1=$(now)
  stores="$stores $x"
  echo "$t1 - $t0" | bc >> "$DATA/tar.t"
  sync; sleep 2
  t0=$(now); DOCKER_BUILDKIT=1 /usr/bin/docker build --no-cache --network=none -q -t addbench "$CTX" >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >> "$DATA/docker.t"
done
# Deleted only now: on this ext4 (mounted with `discard`) deleting 100 MB slows the creates of
# the next few seconds, which would bias whichever tool runs after the deletion.
rm -rf ${stores:-}
r=$(median < "$DATA/rbuild.t"); d=$(median < "$DATA/docker.t"); x=$(median < "$DATA/tar.t")
echo "rbuild runs: $(tr '\n' ' ' < "$DATA/rbuild.t")"
echo "docker runs: $(tr '\n' ' ' < "$DATA/docker.t")"
echo "tar -xzf runs: $(tr '\n' ' ' < "$DATA/tar.t")"
echo "median: rbuild ${r}s, BuildKit ${d}s, tar -xzf ${x}s"
echo "ratio rbuild/BuildKit $(echo "scale=2; $r / $d" | bc), rbuild/tar $(echo "scale=2; $r / $x" | bc)"
