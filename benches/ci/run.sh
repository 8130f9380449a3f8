#!/bin/bash
# CI-fleet benchmark (issue 14, item 7): a two-runner pipeline, rbuild beside BuildKit in the
# same run.
#
#   RBUILD=/path/to/rbuild RUNS=3 benches/ci/run.sh
#   RUNS=1 SCENARIOS=B1 XFER=0 benches/ci/run.sh           # a quick look
#
# Per run, per scenario, per tool (rbuild and BuildKit alternate which goes first):
#   runner A  starts empty, builds the context and pushes REG/ci/<s>-<tool>:a with its cache
#             (rbuild: --cache-to type=registry,ref=REG/ci/<s>-rb-cache,mode=max --push;
#              BuildKit: --build-arg BUILDKIT_INLINE_CACHE=1, then docker push)
#   B3same    (B3 only) runner B, empty, builds the same context with --cache-from and pushes :same
#   change    one file of the context changes (B3: 19 bytes of src/pkg000/mod00/file_00000.txt,
#             as the peer bench's B3touch; B1 uses no context file, so its CI copy ends with
#             `COPY stamp.txt /result/stamp.txt` and stamp.txt gets 19 new bytes)
#   runner B  empty, builds with --cache-from (rbuild: the registry cache; BuildKit: the :a image's
#             inline cache) and pushes :b; this is what is timed against the goal
#   "empty":  rbuild B gets a fresh RBUILD_ROOT; BuildKit B follows `docker builder prune -af` and
#             the removal of every image this script tagged (the ci/* images and the base
#             REG/library/busybox). dockerd is shared with other users here, so its own
#             busybox:latest stays: its layer is the same, so BuildKit may skip downloading the
#             1.1 MB busybox layer that rbuild's runner B downloads (the byte counts show it).
# Then (XFER=1) `rbuild pull` of debian:bookworm-slim (empty store) against `skopeo copy` to an OCI
# layout, and `rbuild push` of B3's image (built untimed in a fresh store, pushed to a freshly
# emptied registry so nothing is deduplicated or cross-mounted) against `skopeo copy` of the
# same image saved with `rbuild save --format oci` to the same freshly emptied registry; and
# ("pushraw") skopeo's copy of the image in its uncompressed form (as rbuild's store holds it
# after a build), which skopeo gzips as it pushes, against rbuild's first push; and
# ("push2") rbuild's push of that image once more, to an emptied registry, when its gzip blob is
# already in the store (upload only, as skopeo's).
#
# Bytes downloaded: all images and caches live in a registry of our own (Debian's docker-registry,
# REG=127.0.0.1:$PORT, fresh storage, JSON access records); the Dockerfiles' `FROM busybox`
# becomes `FROM REG/library/busybox` in the generated contexts (the scenario files in git stay
# unchanged), with busybox and debian copied there from 127.0.0.1:5000. A measured command's
# downloads are the GET responses with status 200/206 the registry logged while it ran
# (`http.response.written`): blob bytes (layers and configs) and all GET bytes (with manifests).
# Checked at start-up against the manifests' sizes with skopeo pulls of busybox and debian.
#
# Environment:
#   RBUILD      the rbuild binary; built with `cargo build --release -p rbuild` when unset
#   RUNS        runs per measurement (median reported)                           [3]
#   SCENARIOS   any of: B1 B3 (B3 includes B3same)                               [B1 B3]
#   XFER        1: also the pull/push comparison with skopeo                     [1]
#   WORK        scratch dir (contexts are generated and kept here; everything
#               else is removed on exit)                                         [/var/tmp/rbuild-ci]
#   PORT        the counting registry's port                                     [5055]
#   PUSH_PORT   the registry the push comparison empties before each push        [5056]
# Needs ../../../shared/bench/setup.sh (docker-registry, dockerd, skopeo, the registry on :5000).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/var/tmp/rbuild-ci}
RUNS=${RUNS:-3}
SCENARIOS=${SCENARIOS-"B1 B3"}   # empty: only the pull/push comparison
XFER=${XFER:-1}
PORT=${PORT:-5055}
PUSH_PORT=${PUSH_PORT:-5056}
REG=127.0.0.1:$PORT
PREG=127.0.0.1:$PUSH_PORT
DOCKER=/usr/bin/docker
export BENCH_DATA=$WORK/data
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$WORK/results/$STAMP
TMP=$WORK/tmp-$STAMP
mkdir -p "$OUT" "$TMP"
TSV=$OUT/measurements.tsv
say() { echo "[ci] $*" >&2; }
loud() { echo "[ci] *** $* ***" >&2; }

# ------------------------------------------------------------------ tools
command -v docker-registry >/dev/null || { loud "docker-registry is not installed (run shared/bench/setup.sh)"; exit 1; }
curl -fsS -m 2 http://127.0.0.1:5000/v2/ >/dev/null ||
  { loud "no registry on 127.0.0.1:5000 (run shared/bench/setup.sh)"; exit 1; }
HAVE_DOCKER=1
$DOCKER version >/dev/null 2>&1 || { HAVE_DOCKER=0; loud "SKIPPING BuildKit: dockerd does not answer"; }
HAVE_SKOPEO=1
command -v skopeo >/dev/null || { HAVE_SKOPEO=0; loud "SKIPPING skopeo: not installed"; }
if [ "$XFER" = 1 ] && [ $HAVE_SKOPEO = 0 ]; then loud "SKIPPING the pull/push comparison (no skopeo)"; XFER=0; fi
if [ -z "${RBUILD:-}" ]; then
  (cd "$REPO" && cargo build --release -p rbuild -q)
  RBUILD=$REPO/target/release/rbuild
fi
export RBUILD_CONFIG=$TMP/config.toml
cat > "$RBUILD_CONFIG" <<TOML
[registry."$REG"]
http = true
[registry."$PREG"]
http = true
TOML
TOOLS="rbuild"; [ $HAVE_DOCKER = 1 ] && TOOLS="rbuild docker"

# ------------------------------------------------------------------ registries and cleanup
declare -A REG_PID
start_registry() {  # name port: fresh storage TMP/reg-NAME, JSON log OUT/registry-NAME.log
  local name=$1 port=$2
  rm -rf "$TMP/reg-$name"
  cat > "$TMP/reg-$name.yml" <<YML
version: 0.1
log:
  level: info
  formatter: json
storage:
  filesystem:
    rootdirectory: $TMP/reg-$name
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
  docker-registry serve "$TMP/reg-$name.yml" >> "$OUT/registry-$name.log" 2>&1 &
  REG_PID[$name]=$!
  for _ in $(seq 50); do curl -fsS -m 1 "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && return; sleep 0.1; done
  loud "registry $name on :$port did not start (see $OUT/registry-$name.log)"; exit 1
}
stop_registry() {
  local pid=${REG_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  REG_PID[$1]=""
}
docker_forget() {  # every image this script tagged in dockerd, and the build cache
  [ $HAVE_DOCKER = 1 ] || return 0
  $DOCKER images --format '{{.Repository}}:{{.Tag}}' | grep -E "^127\.0\.0\.1:($PORT|$PUSH_PORT)/" |
    xargs -r $DOCKER rmi -f >/dev/null 2>&1 || true
  $DOCKER builder prune -af >/dev/null 2>&1 || true
}
cleanup() {
  local rc=$?
  stop_registry count; stop_registry push
  docker_forget
  rm -rf "$TMP"
  say "cleaned up (registries stopped, $TMP removed); results in $OUT"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for p in $PORT $PUSH_PORT; do
  if curl -fsS -m 1 "http://127.0.0.1:$p/v2/" >/dev/null 2>&1; then loud "port $p is taken: set PORT/PUSH_PORT"; exit 1; fi
done
start_registry count "$PORT"
RLOG=$OUT/registry-count.log
for img in busybox:latest debian:bookworm-slim; do
  skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    "docker://127.0.0.1:5000/library/$img" "docker://$REG/library/$img"
done

# ------------------------------------------------------------------ byte counting, checked
lines() { wc -l < "$RLOG"; }
counted() { sleep 0.3; python3 "$HERE/ci.py" bytes "$RLOG" "$1"; }   # -> blob_bytes n_blobs all_bytes
for img in busybox:latest debian:bookworm-slim; do
  want=$(skopeo inspect --tls-verify=false --raw "docker://$REG/library/$img" | python3 "$HERE/ci.py" manifest-size)
  n0=$(lines); rm -rf "$TMP/check"
  skopeo copy -q --src-tls-verify=false "docker://$REG/library/$img" "oci:$TMP/check:x"
  read -r got nb _ <<< "$(counted "$n0")"
  if [ "$got" != "$want" ]; then loud "byte count check FAILED for $img: counted $got, manifest says $want"; exit 1; fi
  say "byte count check: skopeo pull of $img: $got bytes in $nb blobs counted = config + layers of its manifest"
done
rm -rf "$TMP/check"
BUSYBOX_LAYER=$(skopeo inspect --tls-verify=false --raw "docker://$REG/library/busybox:latest" | jq '[.layers[].size] | add')

# ------------------------------------------------------------------ contexts
python3 "$REPO/benches/peer/gen.py" > "$OUT/gen.log"
CTX_B1=$TMP/ctx-b1
mkdir -p "$CTX_B1"
{ sed "s|^FROM busybox|FROM $REG/library/busybox|" "$REPO/benches/peer/scenarios/b1/Dockerfile" | grep -v '^CMD'
  echo "COPY stamp.txt /result/stamp.txt"
  grep '^CMD' "$REPO/benches/peer/scenarios/b1/Dockerfile"; } > "$CTX_B1/Dockerfile"
CTX_B3=$BENCH_DATA/b3   # generated data; its Dockerfile is rewritten from the scenario every run
sed "s|^FROM busybox|FROM $REG/library/busybox|" "$REPO/benches/peer/scenarios/b3/Dockerfile" > "$CTX_B3/Dockerfile"
TOUCHED=$CTX_B3/src/pkg000/mod00/file_00000.txt
ctx_of() { case $1 in B1) echo "$CTX_B1";; B3) echo "$CTX_B3";; esac; }
change() {  # scenario: 19 new bytes in the one file that changes
  case $1 in
    B1) printf '%s' "$(date +%s%N)" > "$CTX_B1/stamp.txt" ;;
    B3) printf '%s' "$(date +%s%N)" | dd of="$TOUCHED" conv=notrunc status=none ;;
  esac
  sync
}

# ------------------------------------------------------------------ runners
repo_of() { local s=${1,,}; case $2 in rbuild) echo "$REG/ci/$s-rb";; docker) echo "$REG/ci/$s-docker";; esac; }
fresh_root() { export RBUILD_ROOT; RBUILD_ROOT=$(mktemp -d "$TMP/store.XXXXXX"); }
drop_root() { rm -rf "$RBUILD_ROOT"; }
rb_A() { # scenario
  local r; r=$(repo_of "$1" rbuild)
  "$RBUILD" build -q -t "$r:a" --cache-to "type=registry,ref=$r-cache,mode=max" --push "$(ctx_of "$1")"
}
rb_B() { # scenario tag
  local r; r=$(repo_of "$1" rbuild)
  "$RBUILD" build -q -t "$r:$2" --cache-from "type=registry,ref=$r-cache" --push "$(ctx_of "$1")"
}
dk_A() {
  local r; r=$(repo_of "$1" docker)
  DOCKER_BUILDKIT=1 $DOCKER build --network=none -q --build-arg BUILDKIT_INLINE_CACHE=1 -t "$r:a" "$(ctx_of "$1")" &&
    $DOCKER push -q "$r:a"
}
dk_B() {
  local r; r=$(repo_of "$1" docker)
  DOCKER_BUILDKIT=1 $DOCKER build --network=none -q --cache-from "$r:a" -t "$r:$2" "$(ctx_of "$1")" &&
    $DOCKER push -q "$r:$2"
}

printf '# section\tscenario\ttool\trun\twall_s\tblob_bytes\tblob_gets\tall_get_bytes\tstatus\n' > "$TSV"
measure() {  # section scenario tool run -- command...
  local sect=$1 scen=$2 tool=$3 run=$4; shift 5
  local n0 t0 t1 st=ok log="$OUT/$sect-$scen-$tool-$run.log"
  sync
  n0=$(lines); t0=$(date +%s.%N)
  "$@" > "$log" 2>&1 || st=FAIL
  t1=$(date +%s.%N)
  read -r b nb all <<< "$(counted "$n0")"
  python3 "$HERE/ci.py" blobs "$RLOG" "$n0" >> "$log"
  local wall; wall=$(echo "$t0 $t1" | awk '{printf "%.3f", $2-$1}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sect" "$scen" "$tool" "$run" "$wall" "$b" "$nb" "$all" "$st" >> "$TSV"
  say "$(printf '%-4s %-6s %-6s run %s: %6.2f s, downloaded %s bytes in %s blobs (%s with manifests) %s  (load %s)' \
    "$sect" "$scen" "$tool" "$run" "$wall" "$b" "$nb" "$all" "$st" "$(cut -d' ' -f1 /proc/loadavg)")"
  if [ $st = FAIL ]; then tail -5 "$log" | sed 's/^/[ci]    /' >&2; fi
}

pipeline() {  # scenario tool run
  local s=$1 t=$2 i=$3
  case $t in
    rbuild)
      change "$s"
      fresh_root; measure A "$s" rbuild "$i" -- rb_A "$s"; drop_root
      if [ "$s" = B3 ]; then fresh_root; measure B B3same rbuild "$i" -- rb_B "$s" same; drop_root; fi
      change "$s"
      fresh_root; measure B "$s" rbuild "$i" -- rb_B "$s" b; drop_root ;;
    docker)
      change "$s"
      docker_forget; measure A "$s" docker "$i" -- dk_A "$s"
      if [ "$s" = B3 ]; then docker_forget; measure B B3same docker "$i" -- dk_B "$s" same; fi
      change "$s"
      docker_forget; measure B "$s" docker "$i" -- dk_B "$s" b
      docker_forget ;;
  esac
}

stored() {  # what a push left in the emptied registry: blob bytes (so both tools' pushes can be compared)
  local n
  n=$(find "$TMP/reg-push/docker/registry/v2/blobs" -name data -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}')
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$n" >> "$OUT/uploaded.tsv"
  say "     $2 pushed: the registry now holds $n blob bytes"
}
xfer() {  # run
  local i=$1 sk
  # pull: empty store against an empty OCI layout
  fresh_root; measure pull pull rbuild "$i" -- "$RBUILD" pull -q "$REG/library/debian:bookworm-slim"; drop_root
  sk=$TMP/skopeo-pull; rm -rf "$sk"
  measure pull pull skopeo "$i" -- skopeo copy -q --src-tls-verify=false "docker://$REG/library/debian:bookworm-slim" "oci:$sk:x"
  rm -rf "$sk"
  # push: B3's image, built untimed in a fresh store, to a freshly emptied registry each time
  fresh_root
  "$RBUILD" build -q -t "$PREG/ci/b3-push:$i" "$CTX_B3" > "$OUT/push-build-$i.log" 2>&1
  stop_registry push; start_registry push "$PUSH_PORT"
  measure push push rbuild "$i" -- "$RBUILD" push --progress=quiet "$PREG/ci/b3-push:$i"
  stored push rbuild "$i"
  # the same push again to an emptied registry: the gzip blob is now in the store (upload only)
  stop_registry push; start_registry push "$PUSH_PORT"
  measure push2 push2 rbuild "$i" -- "$RBUILD" push --progress=quiet "$PREG/ci/b3-push:$i"
  "$RBUILD" save --format oci -o "$TMP/b3.oci.tar" "$PREG/ci/b3-push:$i"
  # the image as the store holds it after a build: its layer uncompressed
  "$RBUILD" build -q -o "type=oci,dest=$TMP/b3.raw.tar,compression=uncompressed" "$CTX_B3" > /dev/null 2>&1
  drop_root
  stop_registry push; start_registry push "$PUSH_PORT"
  measure push push skopeo "$i" -- skopeo copy -q --dest-tls-verify=false "oci-archive:$TMP/b3.oci.tar" "docker://$PREG/ci/b3-push-skopeo:$i"
  stored push skopeo "$i"
  # skopeo from the uncompressed form: it compresses while it pushes, as rbuild's first push does
  stop_registry push; start_registry push "$PUSH_PORT"
  measure pushraw pushraw skopeo "$i" -- skopeo copy -q --dest-tls-verify=false "oci-archive:$TMP/b3.raw.tar" "docker://$PREG/ci/b3-push-skopeo:$i"
  stored pushraw skopeo "$i"
  stop_registry push; rm -rf "$TMP/b3.oci.tar" "$TMP/b3.raw.tar" "$TMP/reg-push"
}

say "rbuild $RBUILD ($("$RBUILD" --version 2>/dev/null || echo ?)), tools: $TOOLS, runs $RUNS, scenarios: $SCENARIOS, xfer $XFER"
say "load before: $(cat /proc/loadavg)"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg); T0=$(date -u +%FT%TZ)
for i in $(seq "$RUNS"); do
  order=$TOOLS; [ $((i % 2)) = 0 ] && [ $HAVE_DOCKER = 1 ] && order="docker rbuild"
  for s in $SCENARIOS; do
    for t in $order; do pipeline "$s" "$t" "$i"; done
  done
  if [ "$XFER" = 1 ]; then xfer "$i"; fi
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "# rbuild CI-fleet benchmark $T0 – $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), runs=$RUNS, load average $LOAD0 before, $LOAD1 after"
  echo "# rbuild binary $RBUILD (modified $(date -u -r "$RBUILD" +%FT%TZ); script tree $(git -C "$REPO" rev-parse --short HEAD)), dockerd $($DOCKER version -f '{{.Server.Version}}' 2>/dev/null || echo -), $(skopeo --version 2>/dev/null || echo 'no skopeo'); median wall seconds (min–max); busybox base layer $BUSYBOX_LAYER bytes"
  echo
  python3 "$HERE/ci.py" table "$TSV"
  if [ -s "$OUT/uploaded.tsv" ]; then
    echo
    echo "Bytes each push left in the emptied registry (blobs): $(awk '{printf "%s%s run %s: %s", (NR>1?"; ":""), $2, $3, $4}' "$OUT/uploaded.tsv")"
  fi
} | tee "$OUT/table.md"
