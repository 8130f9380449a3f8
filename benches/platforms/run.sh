#!/usr/bin/env bash
# Multi-platform builds (issue 15): a small Go program (crates/test-support/testdata/hello-go,
# which prints its GOARCH and uname's machine) built for linux/amd64 and linux/arm64 in one
# command, two ways, by buildah and rbuild in the same run:
#   emulated  Dockerfile.emulated: each platform's stage runs that platform's Go, arm64's under
#             QEMU (binfmt_misc), and runs the program;
#   cross     Dockerfile.cross: `FROM --platform=$BUILDPLATFORM` + `GOARCH=$TARGETARCH`, the
#             compiler runs natively; the target stage only copies the binary.
# buildah: `buildah build --platform linux/amd64,linux/arm64 --manifest …` (its own storage under
# WORK); rbuild: `rbuild build --platform linux/amd64,linux/arm64 …` (its own store). Cold: before
# each run both tools' images and caches are removed, so each run pulls the base (1 MB a
# platform, from loopback) and compiles Go's standard library from scratch (GOCACHE is a tmpfs).
# No network in the RUNs (--network=none). Goal: rbuild ≤ 0.5× buildah.
#
# The inputs come from the test fixtures (crates/test-support, `rbuild-fixture`), never from
# Docker Hub: busybox for amd64 and arm64 as one image index, pushed to a docker-registry of the
# script's own on a free loopback port; Go as the static toolchain context `go` (a GOROOT with
# bin/linux_{amd64,arm64}/go), bind-mounted at /usr/local/go, never copied into an image.
#
#   RUNS=3 benches/platforms/run.sh
#   RUNS=1 MODES=cross TOOLS="buildah rbuild" RBUILD=target/release/rbuild benches/platforms/run.sh
#
# Environment:
#   RUNS    hyperfine runs per (mode, tool)                                      [3]
#   MODES   any of: emulated cross                                               [both]
#   TOOLS   any of: buildah rbuild floor (the compiles alone, no builder)      [all three]
#   RBUILD  the rbuild binary; built with `cargo build --release -p rbuild` when unset
#   WORK    scratch dir: registry, stores, context, results                      [/var/tmp/rbuild-platforms]
#
# Needs root and what .ci/run installs (buildah, runc, docker-registry, skopeo, golang-go,
# qemu-user-static with the aarch64 handler registered, busybox-static and busybox-static:arm64's
# package file), plus hyperfine and jq. A tool whose build fails gets a "<tool> failed" cell
# (rbuild's until `--platform` takes a list) and the end of its log.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-3}
MODES=${MODES:-"emulated cross"}
TOOLS=${TOOLS:-"buildah rbuild floor"}
WORK=${WORK:-/var/tmp/rbuild-platforms}
PLATFORMS=linux/amd64,linux/arm64
OUT=$WORK/results/$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

for t in hyperfine jq skopeo docker-registry buildah; do
  command -v $t >/dev/null || { echo "platforms: $t is not installed" >&2; exit 1; }
done
# The fixtures (built once per machine; the Go toolchain takes ~2 minutes the first time).
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
(cd "$REPO" && cargo build -q -p rbuild-test-support --bin rbuild-fixture)
fixture() { "$TARGET/debug/rbuild-fixture" "$@"; }
MULTI=$(fixture busybox-multi)
GO=$(fixture go-toolchain)
HELLO=$(fixture hello-go)
# arm64 through QEMU's binfmt_misc handler with F (registered here when missing).
fixture emulator aarch64 >/dev/null || { echo "platforms: no aarch64 emulation (see above)" >&2; exit 1; }

if [[ " $TOOLS " == *" rbuild "* && -z "${RBUILD:-}" ]]; then
  (cd "$REPO" && cargo build --release -q -p rbuild)
  RBUILD=$TARGET/release/rbuild
fi

# A registry of our own with the busybox index as <reg>/busybox:latest.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
rm -rf "$WORK/registry" && mkdir -p "$WORK/registry"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
  "$WORK/registry/data" "$REG" > "$WORK/registry/config.yml"
docker-registry serve "$WORK/registry/config.yml" > "$OUT/registry.log" 2>&1 &
REG_PID=$!
trap 'kill $REG_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
skopeo copy -q --all --dest-tls-verify=false "oci:$MULTI:latest" "docker://$REG/busybox:latest"

# The context: the program and the two Dockerfiles.
CTX=$WORK/ctx
rm -rf "$CTX" && mkdir -p "$CTX" && cp "$HELLO"/* "$HERE"/Dockerfile.* "$CTX/"

BUILDAH="buildah --root $WORK/buildah/root --runroot $WORK/buildah/runroot"
export RBUILD_ROOT=$WORK/rbuild-store RBUILD_CONFIG=$WORK/rbuild-config.toml
printf '[registry."%s"]\nhttp = true\n' "$REG" > "$RBUILD_CONFIG"

# The floor: the same two compiles run directly on the host, in parallel, with empty Go caches
# and no builder at all (emulated: the arm64 `go` through QEMU; cross: the amd64 `go` with
# GOARCH=arm64). A builder can only add to it.
floor_go() {  # cache-dir go-arch target-arch
  echo "GOROOT=$GO GOCACHE=$WORK/floor/$1 CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOARCH=$3 $GO/bin/linux_$2/go build -o $WORK/floor/$1.out ."
}
floor_cmd() {  # mode
  case $1 in
    emulated) echo "sh -c 'cd $CTX && ($(floor_go a amd64 amd64) & $(floor_go b arm64 arm64) & wait)'" ;;
    cross)    echo "sh -c 'cd $CTX && ($(floor_go a amd64 amd64) & $(floor_go b amd64 arm64) & wait)'" ;;
  esac
}

build_cmd() {  # tool mode
  case $1 in
    floor)   floor_cmd "$2" ;;
    buildah) echo "$BUILDAH build -q --platform $PLATFORMS --manifest bench-$2 --network=none --tls-verify=false --build-context go=$GO --build-arg REGISTRY=$REG -f $CTX/Dockerfile.$2 $CTX" ;;
    rbuild)  echo "$RBUILD build -q --platform $PLATFORMS -t bench-$2 --network=none --build-context go=$GO --build-arg REGISTRY=$REG -f $CTX/Dockerfile.$2 $CTX" ;;
  esac
}
cold_cmd() {  # tool mode: nothing of an earlier run left (the storage is the benchmark's own)
  case $1 in
    floor)   echo "rm -rf $WORK/floor; mkdir -p $WORK/floor; sync" ;;
    buildah) echo "$BUILDAH manifest rm bench-$2 >/dev/null 2>&1; $BUILDAH rmi -a -f >/dev/null 2>&1; sync; true" ;;
    rbuild)  echo "$RBUILD rmi bench-$2 >/dev/null 2>&1; $RBUILD prune --all >/dev/null 2>&1; sync; true" ;;
  esac
}

declare -A MED RANGE
for m in $MODES; do
  for t in $TOOLS; do
    json=$OUT/$m-$t.json
    echo "== $m / $t   (loadavg before: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    if hyperfine --runs "$RUNS" --export-json "$json" --show-output \
         --prepare "$(cold_cmd "$t" "$m")" "$(build_cmd "$t" "$m")" > "$OUT/$m-$t.log" 2>&1; then
      MED[$m,$t]=$(jq -r '.results[0].median * 100 | round / 100' "$json")
      RANGE[$m,$t]=$(jq -r '.results[0] | "\(.min*100|round/100)–\(.max*100|round/100)"' "$json")
      echo "   median ${MED[$m,$t]} s (${RANGE[$m,$t]})" >&2
    else
      MED[$m,$t]="$t failed"
      grep -v '^ *$' "$OUT/$m-$t.log" | tail -5 >&2
    fi
  done
done

ratio() {
  if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && [ "$2" != 0 ]; then
    echo "$1 $2" | awk '{printf "%.2f", $1/$2}'
  else echo "-"; fi
}
{
  echo "# multi-platform benchmark $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), runs=$RUNS, $PLATFORMS"
  echo "# rbuild ${RBUILD:-} (checkout at $(git -C "$REPO" rev-parse --short HEAD)), $(buildah --version | awk '{print "buildah", $3}'), $(go version | awk '{print $3}'); median wall seconds (min–max)"
  echo "| mode | buildah | rbuild | rbuild/buildah | goal | floor (no builder) | rbuild/floor |"
  echo "|---|---|---|---|---|---|---|"
  for m in $MODES; do
    cell() { local v=${MED[$m,$1]:-}; [ -n "${RANGE[$m,$1]:-}" ] && v="$v (${RANGE[$m,$1]})"; echo "$v"; }
    echo "| $m | $(cell buildah) | $(cell rbuild) | $(ratio "${MED[$m,rbuild]:-}" "${MED[$m,buildah]:-}") | ≤ 0.5 | $(cell floor) | $(ratio "${MED[$m,rbuild]:-}" "${MED[$m,floor]:-}") |"
  done
} | tee "$OUT/table.md"
echo "(hyperfine JSON and logs: $OUT)"
