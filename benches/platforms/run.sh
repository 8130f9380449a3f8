#!/usr/bin/env bash
# Multi-platform builds (issue 15): one program built for linux/amd64 and linux/arm64 in one
# command, two ways, by buildah and rbuild in the same run, for two programs.
#
# Go: crates/test-support/testdata/hello-go (prints its GOARCH and uname's machine); the build
# compiles Go's standard library from scratch (GOCACHE is a tmpfs), so the compiler dominates:
#   emulated    Dockerfile.emulated: each platform's stage runs that platform's Go, arm64's under
#               QEMU (binfmt_misc), and runs the program;
#   cross       Dockerfile.cross: `FROM --platform=$BUILDPLATFORM` + `GOARCH=$TARGETARCH`, the
#               compiler runs natively; the target stage only copies the binary.
# C: benches/platforms/hello-c/hello.c (prints the architecture it was compiled for and uname's
# machine), a compile of well under a second natively, so the builders are what is measured:
#   c-emulated  Dockerfile.c-emulated: each platform's stage runs that platform's own gcc (arm64's
#               under QEMU) and runs the program;
#   c-cross     Dockerfile.c-cross: `FROM --platform=$BUILDPLATFORM` stage with gcc (amd64) or
#               aarch64-linux-gnu-gcc (arm64); the target stage (busybox) only copies the binary.
# buildah: `buildah build --platform linux/amd64,linux/arm64 --manifest …` (its own storage under
# WORK); rbuild: `rbuild build --platform linux/amd64,linux/arm64 …` (its own store). No network
# in the RUNs (--network=none). Goal: rbuild ≤ 0.5× buildah.
#
# Cold: before each run both tools' built images and build caches are removed. The base image is
# either pulled in every run too ("pull": nothing of it left in the tool's storage; the Go modes'
# busybox is 1 MB a platform, the C modes' gcc base ~90 MB of gzip a platform) or, for the C modes,
# also already present ("kept": pulled before the runs and kept across them: rbuild through a
# tagged image rb-keep-gcc/rb-keep-busybox for both platforms, buildah through `buildah pull`
# of each platform, tagged; one warm-up run before the measured ones so both tools have it
# unpacked). The base comes from the script's loopback registry either way.
#
# The inputs never come from Docker Hub:
# - busybox for amd64 and arm64 as one image index (the test fixtures' `rbuild-fixture
#   busybox-multi`), and Go as the static toolchain context `go` (`rbuild-fixture go-toolchain`,
#   a GOROOT with bin/linux_{amd64,arm64}/go), bind-mounted at /usr/local/go, never copied in;
# - the C modes' base `gcc`: an amd64+arm64 image index made once per machine by c-base.sh under
#   WORK/cbase from Debian's mirror: mmdebstrap bookworm minbase rootfs tars (amd64: gcc
#   libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross; arm64: gcc libc6-dev, its maintainer
#   scripts run through qemu-user-static), each made a one-layer image with umoci, joined into an
#   index with jq (see c-base.sh; ~5 minutes the first time).
# Both indexes are pushed with skopeo to a docker-registry of the script's own on a free
# loopback port, as <reg>/busybox:latest and <reg>/gcc:latest.
#
#   RUNS=3 benches/platforms/run.sh
#   RUNS=5 MODES="c-emulated c-cross" RBUILD=target/release/rbuild benches/platforms/run.sh
#   RUNS=1 MODES=cross TOOLS="buildah rbuild" RBUILD=target/release/rbuild benches/platforms/run.sh
#
# Environment:
#   RUNS    hyperfine runs per (mode, base, tool)                                [3]
#   MODES   any of: emulated cross c-emulated c-cross                            [all four]
#   BASES   for the C modes, any of: pull kept (the Go modes always pull)       [both]
#   TOOLS   any of: buildah rbuild floor (no builder: the compiles alone, after   [all three]
#           unpacking the base layers with `gzip -dc | tar -x` when the base is pulled)
#   RBUILD  the rbuild binary; built with `cargo build --release -p rbuild` when unset
#   WORK    scratch dir: registry, stores, context, results, the C base           [/var/tmp/rbuild-platforms]
#
# Needs root and what .ci/run installs (buildah, runc, docker-registry, skopeo, golang-go,
# qemu-user-static with the aarch64 handler registered, busybox-static and busybox-static:arm64's
# package file), plus hyperfine and jq; for the C modes also gcc and gcc-aarch64-linux-gnu on the
# host (the floor), and mmdebstrap and umoci (c-base.sh). A tool whose build fails gets a
# "<tool> failed" cell and the end of its log.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-3}
MODES=${MODES:-"emulated cross c-emulated c-cross"}
BASES=${BASES:-"pull kept"}
TOOLS=${TOOLS:-"buildah rbuild floor"}
WORK=${WORK:-/var/tmp/rbuild-platforms}
PLATFORMS=linux/amd64,linux/arm64
OUT=$WORK/results/$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
is_c() { [[ $1 == c-* ]]; }
HAVE_GO=""; HAVE_C=""
for m in $MODES; do
  case $m in
    emulated|cross) HAVE_GO=1 ;;
    c-emulated|c-cross) HAVE_C=1 ;;
    *) echo "platforms: unknown mode $m (emulated cross c-emulated c-cross)" >&2; exit 2 ;;
  esac
done
for b in $BASES; do
  [[ $b == pull || $b == kept ]] || { echo "platforms: unknown base $b (pull kept)" >&2; exit 2; }
done

for t in hyperfine jq skopeo docker-registry buildah; do
  command -v $t >/dev/null || { echo "platforms: $t is not installed" >&2; exit 1; }
done
if [ -n "$HAVE_C" ]; then
  for t in gcc aarch64-linux-gnu-gcc mmdebstrap umoci; do
    command -v $t >/dev/null || { echo "platforms: $t is not installed (the C modes)" >&2; exit 1; }
  done
fi
# The fixtures (made once per machine; the Go toolchain takes ~2 minutes the first time, the
# C base ~5 minutes).
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
(cd "$REPO" && cargo build -q -p rbuild-test-support --bin rbuild-fixture)
fixture() { "$TARGET/debug/rbuild-fixture" "$@"; }
MULTI=$(fixture busybox-multi)
if [ -n "$HAVE_GO" ]; then
  GO=$(fixture go-toolchain)
  HELLO=$(fixture hello-go)
fi
ARM64_ROOT=$WORK/cbase/rootfs-arm64
if [ -n "$HAVE_C" ]; then
  CBASE=$("$HERE/c-base.sh" "$WORK/cbase")
  # The emulated floor's arm64 gcc: the arm64 rootfs, unpacked once, entered with chroot.
  if [ ! -x "$ARM64_ROOT/usr/bin/gcc" ]; then
    rm -rf "$ARM64_ROOT.tmp" && mkdir -p "$ARM64_ROOT.tmp"
    tar -xf "$WORK/cbase/rootfs-arm64.tar" -C "$ARM64_ROOT.tmp" && mv "$ARM64_ROOT.tmp" "$ARM64_ROOT"
  fi
fi
# arm64 through QEMU's binfmt_misc handler with F (registered here when missing).
fixture emulator aarch64 >/dev/null || { echo "platforms: no aarch64 emulation (see above)" >&2; exit 1; }

if [[ " $TOOLS " == *" rbuild "* && -z "${RBUILD:-}" ]]; then
  (cd "$REPO" && cargo build --release -q -p rbuild)
  RBUILD=$TARGET/release/rbuild
fi

# A registry of our own with the busybox index as <reg>/busybox:latest (and the C base as
# <reg>/gcc:latest).
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
if [ -n "$HAVE_C" ]; then
  skopeo copy -q --all --dest-tls-verify=false "oci:$CBASE:latest" "docker://$REG/gcc:latest"
fi

# The contexts: each program and its two Dockerfiles (Go refuses .c files in a package without
# cgo, so the programs do not share one).
CTX=$WORK/ctx
CTX_C=$WORK/ctx-c
rm -rf "$CTX" "$CTX_C" && mkdir -p "$CTX" "$CTX_C"
[ -z "$HAVE_GO" ] || cp "$HELLO"/* "$HERE"/Dockerfile.emulated "$HERE"/Dockerfile.cross "$CTX/"
[ -z "$HAVE_C" ] || cp "$HERE"/hello-c/hello.c "$HERE"/Dockerfile.c-* "$CTX_C/"
ctx_of() { if is_c "$1"; then echo "$CTX_C"; else echo "$CTX"; fi; }

BUILDAH="buildah --root $WORK/buildah/root --runroot $WORK/buildah/runroot"
export RBUILD_ROOT=$WORK/rbuild-store RBUILD_CONFIG=$WORK/rbuild-config.toml
printf '[registry."%s"]\nhttp = true\n' "$REG" > "$RBUILD_CONFIG"

# The floor: the same two compiles run directly on the host, in parallel, with no builder at
# all (for the C modes with the base pulled, after unpacking the base). A builder can only add
# to it.
# Go (empty Go caches): emulated, the arm64 `go` through QEMU beside the amd64 one; cross, the
# amd64 `go` with GOARCH=arm64.
floor_go() {  # cache-dir go-arch target-arch
  echo "GOROOT=$GO GOCACHE=$WORK/floor/$1 CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOARCH=$3 $GO/bin/linux_$2/go build -o $WORK/floor/$1.out ."
}
# C, base kept (the base is already unpacked, as in the builders' storage): emulated, the host's
# gcc beside the arm64 rootfs's own gcc (chroot, so QEMU runs its cc1, as and ld), each then
# running the program; cross, the host's gcc and aarch64-linux-gnu-gcc (the same Debian
# bookworm packages as in the base's amd64 image).
# C, base pulled: first the base layers the build needs are unpacked (`gzip -dc | tar -x`, from
# the OCI layout: no download) into WORK/floor, each platform's compile then runs in a chroot
# of its fresh rootfs; emulated, both platforms in parallel; cross, the amd64 layer only.
FLOOR_BIN=$WORK/floor-bin
mkdir -p "$FLOOR_BIN"
layer_of() {  # arch: the gcc base's one layer for it, a gzip blob in the OCI layout
  local idx man
  idx=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "latest") | .digest' "$CBASE/index.json")
  man=$(jq -r --arg a "$1" '.manifests[] | select(.platform.architecture == $a) | .digest' "$CBASE/blobs/sha256/${idx#sha256:}")
  jq -r '.layers[0].digest' "$CBASE/blobs/sha256/${man#sha256:}" | sed "s|^sha256:|$CBASE/blobs/sha256/|"
}
if [ -n "$HAVE_C" ]; then
  cat > "$FLOOR_BIN/c-emulated-kept" <<SCRIPT
#!/bin/sh
set -e
cp $CTX_C/hello.c $ARM64_ROOT/tmp/hello.c
gcc -O2 -static -o $WORK/floor/hello-amd64 $CTX_C/hello.c && $WORK/floor/hello-amd64 & a=\$!
chroot $ARM64_ROOT sh -c 'gcc -O2 -static -o /tmp/hello /tmp/hello.c && /tmp/hello' & b=\$!
wait \$a; wait \$b
SCRIPT
  cat > "$FLOOR_BIN/c-cross-kept" <<SCRIPT
#!/bin/sh
set -e
gcc -O2 -static -o $WORK/floor/hello-amd64 $CTX_C/hello.c & a=\$!
aarch64-linux-gnu-gcc -O2 -static -o $WORK/floor/hello-arm64 $CTX_C/hello.c & b=\$!
wait \$a; wait \$b
SCRIPT
  cat > "$FLOOR_BIN/c-emulated-pull" <<SCRIPT
#!/bin/sh
set -e
platform() {  # arch layer
  mkdir -p $WORK/floor/\$1 && gzip -dc \$2 | tar -x -C $WORK/floor/\$1
  cp $CTX_C/hello.c $WORK/floor/\$1/tmp/hello.c
  chroot $WORK/floor/\$1 sh -c 'gcc -O2 -static -o /tmp/hello /tmp/hello.c && /tmp/hello'
}
platform amd64 $(layer_of amd64) & a=\$!
platform arm64 $(layer_of arm64) & b=\$!
wait \$a; wait \$b
SCRIPT
  cat > "$FLOOR_BIN/c-cross-pull" <<SCRIPT
#!/bin/sh
set -e
R=$WORK/floor/amd64
mkdir -p \$R && gzip -dc $(layer_of amd64) | tar -x -C \$R
cp $CTX_C/hello.c \$R/tmp/hello.c
chroot \$R gcc -O2 -static -o /tmp/hello-amd64 /tmp/hello.c & a=\$!
chroot \$R aarch64-linux-gnu-gcc -O2 -static -o /tmp/hello-arm64 /tmp/hello.c & b=\$!
wait \$a; wait \$b
SCRIPT
  chmod +x "$FLOOR_BIN"/c-*
fi
floor_cmd() {  # mode base
  case $1 in
    emulated) echo "sh -c 'cd $CTX && ($(floor_go a amd64 amd64) & $(floor_go b arm64 arm64) & wait)'" ;;
    cross)    echo "sh -c 'cd $CTX && ($(floor_go a amd64 amd64) & $(floor_go b amd64 arm64) & wait)'" ;;
    c-*)      echo "$FLOOR_BIN/$1-$2" ;;
  esac
}

build_cmd() {  # tool mode base
  local ctx go=""
  ctx=$(ctx_of "$2")
  is_c "$2" || go="--build-context go=$GO "
  case $1 in
    floor)   floor_cmd "$2" "$3" ;;
    buildah) echo "$BUILDAH build -q --platform $PLATFORMS --manifest bench-$2 --network=none --tls-verify=false ${go}--build-arg REGISTRY=$REG -f $ctx/Dockerfile.$2 $ctx" ;;
    rbuild)  echo "$RBUILD build -q --platform $PLATFORMS -t bench-$2 --network=none ${go}--build-arg REGISTRY=$REG -f $ctx/Dockerfile.$2 $ctx" ;;
  esac
}
# Every mode's image goes before each run: an image left by another mode would hold its base.
BENCH_IMAGES="bench-emulated bench-cross bench-c-emulated bench-c-cross"
KEEP_RBUILD="rb-keep-gcc rb-keep-busybox"
cold_cmd() {  # tool mode base: nothing of an earlier run left (the storage is the benchmark's own)
  local lists="for l in $BENCH_IMAGES; do $BUILDAH manifest rm \$l; done >/dev/null 2>&1"
  case $1,$3 in
    floor,*)      echo "rm -rf $WORK/floor $ARM64_ROOT/tmp/hello; mkdir -p $WORK/floor; sync" ;;
    buildah,pull) echo "$lists; $BUILDAH rmi -a -f >/dev/null 2>&1; sync; true" ;;
    rbuild,pull)  echo "$RBUILD rmi $BENCH_IMAGES $KEEP_RBUILD >/dev/null 2>&1; $RBUILD prune --all >/dev/null 2>&1; sync; true" ;;
    # only what the builds made: the manifest lists, then the images no tag holds any more
    buildah,kept) echo "$lists; $BUILDAH rmi --prune >/dev/null 2>&1; sync; true" ;;
    rbuild,kept)  echo "$RBUILD rmi $BENCH_IMAGES >/dev/null 2>&1; $RBUILD prune --all >/dev/null 2>&1; sync; true" ;;
  esac
}
keep_bases() {  # tool: the C modes' bases for both platforms into the tool's storage, held by tags
  local img p
  case $1 in
    rbuild)
      for img in gcc busybox; do
        printf 'FROM %s/%s:latest\n' "$REG" "$img" |
          "$RBUILD" build -q --platform "$PLATFORMS" -t "rb-keep-$img" -f - "$CTX_C" >/dev/null
      done ;;
    buildah)
      for img in gcc busybox; do
        for p in amd64 arm64; do
          $BUILDAH pull -q --tls-verify=false --platform "linux/$p" "$REG/$img:latest" >/dev/null
          $BUILDAH tag "$REG/$img:latest" "rb-keep-$img-$p"
        done
      done ;;
  esac
}

declare -A MED RANGE
ROWS=()
for m in $MODES; do
  if is_c "$m"; then bases=$BASES; else bases=pull; fi
  for b in $bases; do
    label=$m
    if is_c "$m"; then label="$m, base $([ "$b" = pull ] && echo pulled || echo kept)"; fi
    ROWS+=("$m|$b|$label")
    for t in $TOOLS; do
      key=$m,$b,$t
      json=$OUT/$m-$b-$t.json
      warm=()
      if [[ $b == kept && $t != floor ]]; then keep_bases "$t"; warm=(--warmup 1); fi
      echo "== $label / $t   (loadavg before: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
      if hyperfine --runs "$RUNS" "${warm[@]}" --export-json "$json" --show-output \
           --prepare "$(cold_cmd "$t" "$m" "$b")" "$(build_cmd "$t" "$m" "$b")" > "$OUT/$m-$b-$t.log" 2>&1; then
        MED[$key]=$(jq -r '.results[0].median * 100 | round / 100' "$json")
        RANGE[$key]=$(jq -r '.results[0] | "\(.min*100|round/100)–\(.max*100|round/100)"' "$json")
        echo "   median ${MED[$key]} s (${RANGE[$key]})" >&2
      else
        MED[$key]="$t failed"
        grep -v '^ *$' "$OUT/$m-$b-$t.log" | tail -5 >&2
      fi
    done
  done
done

ratio() {
  if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && [ "$2" != 0 ]; then
    echo "$1 $2" | awk '{printf "%.2f", $1/$2}'
  else echo "-"; fi
}
cell() {  # key
  local v=${MED[$1]:-}
  [ -z "${RANGE[$1]:-}" ] || v="$v (${RANGE[$1]})"
  echo "$v"
}
{
  echo "# multi-platform benchmark $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), runs=$RUNS, $PLATFORMS"
  echo "# rbuild ${RBUILD:-} (checkout at $(git -C "$REPO" rev-parse --short HEAD)), $(buildah --version | awk '{print "buildah", $3}'), $(go version | awk '{print $3}'), gcc $(gcc -dumpfullversion); median wall seconds (min–max)"
  echo "| mode | buildah | rbuild | rbuild/buildah | goal | floor (no builder) | rbuild/floor |"
  echo "|---|---|---|---|---|---|---|"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r m b label <<<"$row"
    echo "| $label | $(cell "$m,$b,buildah") | $(cell "$m,$b,rbuild") | $(ratio "${MED[$m,$b,rbuild]:-}" "${MED[$m,$b,buildah]:-}") | ≤ 0.5 | $(cell "$m,$b,floor") | $(ratio "${MED[$m,$b,rbuild]:-}" "${MED[$m,$b,floor]:-}") |"
  done
} | tee "$OUT/table.md"
echo "(hyperfine JSON and logs: $OUT)"
