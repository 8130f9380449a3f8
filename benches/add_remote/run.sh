#!/usr/bin/env bash
# ADD of a URL (FROM scratch, one 256 MB file served by `python3 -m http.server` on loopback):
# rbuild against BuildKit (dockerd's embedded BuildKit) and a bare `curl -o` floor,
# interleaved in one run.
#   cold: rbuild with a fresh store, BuildKit with --no-cache, curl to a fresh file;
#   warm: the same build again, nothing changed (rbuild revalidates with If-Modified-Since
#         and gets a 304; BuildKit sends no conditional request without an ETag, which
#         http.server does not send, so it downloads and hashes the file again).
# Before each timed build: `sync` and 2 s of rest. Prints per-run wall seconds and medians.
#
#   RUNS=3 MB=256 RBUILD=target/release/rbuild benches/add_remote/run.sh
set -euo pipefail
RUNS=${RUNS:-3}
MB=${MB:-256}
PORT=${PORT:-18777}
RBUILD=${RBUILD:-$(dirname "$0")/../../target/release/rbuild}
DATA=${DATA:-/var/tmp/rbuild-add-remote-bench}
mkdir -p "$DATA/srv" "$DATA/ctx"
if [ "$(stat -c %s "$DATA/srv/big.bin" 2>/dev/null || echo 0)" != $((MB * 1024 * 1024)) ]; then
  head -c $((MB * 1024 * 1024)) /dev/urandom > "$DATA/srv/big.bin"
fi
printf 'FROM scratch\nADD http://127.0.0.1:%s/big.bin /big.bin\n' "$PORT" > "$DATA/ctx/Dockerfile"
(cd "$DATA/srv" && exec python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$PORT/big.bin" && break; sleep 0.1; done
echo "file: $MB MiB over http://127.0.0.1:$PORT"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
for f in rbuild_cold rbuild_warm docker_cold docker_warm curl; do : > "$DATA/$f.t"; done
stores=""
for i in $(seq "$RUNS"); do
  store=$(mktemp -d /var/tmp/rbuild-add-remote-store.XXXX); stores="$stores $store"
  sync; sleep 2
  t0=$(now); RBUILD_ROOT=$store "$RBUILD" build -q -t addremote "$DATA/ctx" >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >> "$DATA/rbuild_cold.t"
  sync; sleep 2
  t0=$(now); RBUILD_ROOT=$store "$RBUILD" build -q -t addremote "$DATA/ctx" >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >> "$DATA/rbuild_warm.t"
  sync; sleep 2
  t0=$(now); DOCKER_BUILDKIT=1 /usr/bin/docker build --no-cache --network=host -q -t addremote "$DATA/ctx" >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >> "$DATA/docker_cold.t"
  sync; sleep 2
  t0=$(now); DOCKER_BUILDKIT=1 /usr/bin/docker build --network=host -q -t addremote "$DATA/ctx" >/dev/null; t1=$(now)
  echo "$t1 - $t0" | bc >> "$DATA/docker_warm.t"
  sync; sleep 2
  t0=$(now); curl -sf -o "$DATA/curl.out" "http://127.0.0.1:$PORT/big.bin"; t1=$(now)
  echo "$t1 - $t0" | bc >> "$DATA/curl.t"
  rm -f "$DATA/curl.out"
done
rm -rf $stores
for f in rbuild_cold rbuild_warm docker_cold docker_warm curl; do
  echo "$f runs: $(tr '\n' ' ' < "$DATA/$f.t")"
done
rc=$(median < "$DATA/rbuild_cold.t"); rw=$(median < "$DATA/rbuild_warm.t")
dc=$(median < "$DATA/docker_cold.t"); dw=$(median < "$DATA/docker_warm.t"); c=$(median < "$DATA/curl.t")
echo "median cold: rbuild ${rc}s, BuildKit ${dc}s, curl ${c}s; warm: rbuild ${rw}s, BuildKit ${dw}s"
echo "ratio cold rbuild/BuildKit $(echo "scale=2; $rc / $dc" | bc), rbuild/curl $(echo "scale=2; $rc / $c" | bc); warm rbuild/BuildKit $(echo "scale=3; $rw / $dw" | bc)"
