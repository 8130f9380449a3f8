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
#   c-tcc-emulated  Dockerfile.c-tcc-emulated: as c-emulated with the Tiny C Compiler (tcc 0.9.27,
#               one process compiles, assembles and links; dynamically linked), so the compile
#               under QEMU is small: gcc's cc1/as/ld under QEMU alone are 0.66x buildah's
#               c-emulated build, which measures the compiler; c-tcc-emulated measures the builders.
# buildah: `buildah build --platform linux/amd64,linux/arm64 --manifest …` (its own storage under
# WORK); rbuild: `rbuild build --platform linux/amd64,linux/arm64 …` (its own store). No network
# in the RUNs (--network=none). Goal: rbuild ≤ 0.5× buildah.
#
# Cold: before each run both tools' built images and build caches are removed. The base image is
# either pulled in every run too ("pull": nothing of it left in the tool's storage; the Go modes'
# busybox is 1 MB a platform, the C modes' gcc base ~90 MB of gzip a platform) or, for the C modes,
# also already present ("kept": pulled before the runs and kept across them: rbuild through a
# tagged image rb-keep-gcc/rb-keep-busybox (rb-keep-tcc) for both platforms, buildah through `buildah pull`
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
#   index with jq (see c-base.sh; ~5 minutes the first time);
# - the tcc mode's base `tcc`: the same, by `c-base.sh WORK/tccbase tcc` (amd64 and arm64: tcc
#   libc6-dev; ~2.5 minutes the first time).
# The indexes are pushed with skopeo to a docker-registry of the script's own on a free
# loopback port, as <reg>/busybox:latest, <reg>/gcc:latest and <reg>/tcc:latest.
#
# After the runs of c-tcc-emulated, what both tools built is checked (outside the timing): each
# tool's last image is pushed to the loopback registry (`rbuild push`, `buildah manifest push
# --all`), its index must list linux/amd64 and linux/arm64, and each platform's last layer must
# hold /usr/local/bin/hello of that architecture (`file`) printing "<arch> <machine>" when run
# in a chroot of that platform's tcc rootfs (arm64's through QEMU).
#
#   RUNS=3 benches/platforms/run.sh
#   RUNS=5 MODES="c-emulated c-cross" RBUILD=target/release/rbuild benches/platforms/run.sh
#   RUNS=1 MODES=cross TOOLS="buildah rbuild" RBUILD=target/release/rbuild benches/platforms/run.sh
#
# Environment:
#   RUNS    hyperfine runs per (mode, base, tool)                                [3]
#   MODES   any of: emulated cross c-emulated c-cross c-tcc-emulated             [all five]
#   BASES   for the C modes, any of: pull kept (the Go modes always pull)       [both]
#   TOOLS   any of: buildah rbuild floor (no builder: the compiles alone, after   [all three]
#           unpacking the base layers with `gzip -dc | tar -x` when the base is pulled)
#   RBUILD  the rbuild binary; built with `cargo build --release -p rbuild` when unset
#   DROP_CACHES  1: with the base pulled, each cold step ends with `sync; echo 1 >             [0]
#           /proc/sys/vm/drop_caches` (every tool and the floor). Without it, on ext4 without
#           a journal, each run's ~15,000 new inodes go where the cold step has just freed
#           as many, and ext4's `recently_deleted` check, which only sees inode-table blocks
#           still in the buffer cache, skips them one by one: seconds of system time that
#           depend on where a tool's files land rather than on the tool (benches/README.md)
#   WORK    scratch dir: registry, stores, context, results, the C base           [/var/tmp/rbuild-platforms]
#
# Needs root and what .ci/run installs (buildah, runc, docker-registry, skopeo, golang-go,
# qemu-user-static with the aarch64 handler registered, busybox-static and busybox-static:arm64's
# package file), plus hyperfine and jq; for the C modes mmdebstrap and umoci (c-base.sh), and
# for the gcc ones also gcc and gcc-aarch64-linux-gnu on the host (the floor; tcc's floor uses
# the tcc rootfs's own tcc for both platforms), and `file` for c-tcc-emulated's check. A tool whose build fails gets a
# "<tool> failed" cell and the end of its log.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-3}
MODES=${MODES:-"emulated cross c-emulated c-cross c-tcc-emulated"}
BASES=${BASES:-"pull kept"}
TOOLS=${TOOLS:-"buildah rbuild floor"}
WORK=${WORK:-/var/tmp/rbuild-platforms}
DROP_CACHES=${DROP_CACHES:-0}
PLATFORMS=linux/amd64,linux/arm64
OUT=$WORK/results/$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
is_c() { [[ $1 == c-* ]]; }
HAVE_GO=""; HAVE_C=""; HAVE_TCC=""
for m in $MODES; do
  case $m in
    emulated|cross) HAVE_GO=1 ;;
    c-emulated|c-cross) HAVE_C=1 ;;
    c-tcc-emulated) HAVE_TCC=1 ;;
    *) echo "platforms: unknown mode $m (emulated cross c-emulated c-cross c-tcc-emulated)" >&2; exit 2 ;;
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
if [ -n "$HAVE_TCC" ]; then
  for t in mmdebstrap umoci file curl; do
    command -v $t >/dev/null || { echo "platforms: $t is not installed (c-tcc-emulated)" >&2; exit 1; }
  done
fi
# The fixtures (made once per machine; the Go toolchain takes ~2 minutes the first time, the
# gcc base ~5 minutes, the tcc base ~2.5).
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
(cd "$REPO" && cargo build -q -p rbuild-test-support --bin rbuild-fixture)
fixture() { "$TARGET/debug/rbuild-fixture" "$@"; }
MULTI=$(fixture busybox-multi)
if [ -n "$HAVE_GO" ]; then
  GO=$(fixture go-toolchain)
  HELLO=$(fixture hello-go)
fi
unpack_root() {  # base-dir arch compiler: the base's rootfs for arch, unpacked once, for chroot
  local root=$1/rootfs-$2
  if [ ! -x "$root/usr/bin/$3" ]; then
    rm -rf "$root.tmp" && mkdir -p "$root.tmp"
    tar -xf "$1/rootfs-$2.tar" -C "$root.tmp" && mv "$root.tmp" "$root"
  fi
}
ARM64_ROOT=$WORK/cbase/rootfs-arm64
if [ -n "$HAVE_C" ]; then
  CBASE=$("$HERE/c-base.sh" "$WORK/cbase")
  # The emulated floor's arm64 gcc: the arm64 rootfs, entered with chroot.
  unpack_root "$WORK/cbase" arm64 gcc
fi
TCC_AMD64_ROOT=$WORK/tccbase/rootfs-amd64
TCC_ARM64_ROOT=$WORK/tccbase/rootfs-arm64
if [ -n "$HAVE_TCC" ]; then
  TCCBASE=$("$HERE/c-base.sh" "$WORK/tccbase" tcc)
  # The tcc floor (base kept) and the check: each platform's rootfs with its own tcc.
  unpack_root "$WORK/tccbase" amd64 tcc
  unpack_root "$WORK/tccbase" arm64 tcc
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
if [ -n "$HAVE_TCC" ]; then
  skopeo copy -q --all --dest-tls-verify=false "oci:$TCCBASE:latest" "docker://$REG/tcc:latest"
fi

# The contexts: each program and its two Dockerfiles (Go refuses .c files in a package without
# cgo, so the programs do not share one).
CTX=$WORK/ctx
CTX_C=$WORK/ctx-c
rm -rf "$CTX" "$CTX_C" && mkdir -p "$CTX" "$CTX_C"
[ -z "$HAVE_GO" ] || cp "$HELLO"/* "$HERE"/Dockerfile.emulated "$HERE"/Dockerfile.cross "$CTX/"
[ -z "$HAVE_C$HAVE_TCC" ] || cp "$HERE"/hello-c/hello.c "$HERE"/Dockerfile.c-* "$CTX_C/"
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
# c-tcc-emulated: the host has no tcc, so both platforms compile with their rootfs's own tcc in a
# chroot (kept: the rootfs unpacked once; pulled: unpacked from the layer in every run), arm64's
# through QEMU, both in parallel, each then running the program.
FLOOR_BIN=$WORK/floor-bin
mkdir -p "$FLOOR_BIN"
layer_of() {  # arch [layout]: the base's (gcc's by default) one layer for it, a gzip blob in the OCI layout
  local idx man l=${2:-$CBASE}
  idx=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "latest") | .digest' "$l/index.json")
  man=$(jq -r --arg a "$1" '.manifests[] | select(.platform.architecture == $a) | .digest' "$l/blobs/sha256/${idx#sha256:}")
  jq -r '.layers[0].digest' "$l/blobs/sha256/${man#sha256:}" | sed "s|^sha256:|$l/blobs/sha256/|"
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
if [ -n "$HAVE_TCC" ]; then
  cat > "$FLOOR_BIN/c-tcc-emulated-kept" <<SCRIPT
#!/bin/sh
set -e
platform() {  # rootfs
  cp $CTX_C/hello.c \$1/tmp/hello.c
  chroot \$1 sh -c 'tcc -o /tmp/hello /tmp/hello.c && /tmp/hello'
}
platform $TCC_AMD64_ROOT & a=\$!
platform $TCC_ARM64_ROOT & b=\$!
wait \$a; wait \$b
SCRIPT
  cat > "$FLOOR_BIN/c-tcc-emulated-pull" <<SCRIPT
#!/bin/sh
set -e
platform() {  # arch layer
  mkdir -p $WORK/floor/\$1 && gzip -dc \$2 | tar -x -C $WORK/floor/\$1
  cp $CTX_C/hello.c $WORK/floor/\$1/tmp/hello.c
  chroot $WORK/floor/\$1 sh -c 'tcc -o /tmp/hello /tmp/hello.c && /tmp/hello'
}
platform amd64 $(layer_of amd64 "$TCCBASE") & a=\$!
platform arm64 $(layer_of arm64 "$TCCBASE") & b=\$!
wait \$a; wait \$b
SCRIPT
  chmod +x "$FLOOR_BIN"/c-tcc-*
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
BENCH_IMAGES="bench-emulated bench-cross bench-c-emulated bench-c-cross bench-c-tcc-emulated"
KEEP_RBUILD="rb-keep-gcc rb-keep-busybox rb-keep-tcc"
cold_cmd() {  # tool mode base: nothing of an earlier run left (the storage is the benchmark's own)
  local lists="for l in $BENCH_IMAGES; do $BUILDAH manifest rm \$l; done >/dev/null 2>&1"
  case $1,$3 in
    floor,*)      echo "rm -rf $WORK/floor $ARM64_ROOT/tmp/hello $TCC_AMD64_ROOT/tmp/hello $TCC_ARM64_ROOT/tmp/hello; mkdir -p $WORK/floor; sync" ;;
    buildah,pull) echo "$lists; $BUILDAH rmi -a -f >/dev/null 2>&1; sync; true" ;;
    rbuild,pull)  echo "$RBUILD rmi $BENCH_IMAGES $KEEP_RBUILD >/dev/null 2>&1; $RBUILD prune --all >/dev/null 2>&1; sync; true" ;;
    # only what the builds made: the manifest lists, then the images no tag holds any more
    buildah,kept) echo "$lists; $BUILDAH rmi --prune >/dev/null 2>&1; sync; true" ;;
    rbuild,kept)  echo "$RBUILD rmi $BENCH_IMAGES >/dev/null 2>&1; $RBUILD prune --all >/dev/null 2>&1; sync; true" ;;
  esac
}
bases_of() {  # mode: the base images a C mode's Dockerfile names
  case $1 in
    c-tcc-emulated) echo tcc ;;
    *)              echo gcc busybox ;;
  esac
}
keep_bases() {  # tool mode: the C mode's bases for both platforms into the tool's storage, held by tags
  local img p
  case $1 in
    rbuild)
      for img in $(bases_of "$2"); do
        printf 'FROM %s/%s:latest\n' "$REG" "$img" |
          "$RBUILD" build -q --platform "$PLATFORMS" -t "rb-keep-$img" -f - "$CTX_C" >/dev/null
      done ;;
    buildah)
      for img in $(bases_of "$2"); do
        for p in amd64 arm64; do
          $BUILDAH pull -q --tls-verify=false --platform "linux/$p" "$REG/$img:latest" >/dev/null
          $BUILDAH tag "$REG/$img:latest" "rb-keep-$img-$p"
        done
      done ;;
  esac
}

# c-tcc-emulated's check of what a tool built (its image left by the last measured run): pushed
# to the loopback registry, the index must list both platforms, and each platform's last layer
# (the RUN's) must hold /usr/local/bin/hello of that architecture, printing "<arch> <machine>"
# in a chroot of that platform's tcc rootfs (arm64's through QEMU).
check_built() {  # tool mode base -> prints one line; fails when the build is wrong
  local repo=check-$2 tag=$1-$3 dir=$OUT/check-$2-$3-$1 idx arch dig man layer bin want got ft root
  rm -rf "$dir" && mkdir -p "$dir"
  case $1 in
    rbuild)
      "$RBUILD" tag "bench-$2" "$REG/$repo:$tag" >/dev/null || { echo "rbuild tag failed"; return 1; }
      "$RBUILD" push --progress=plain "$REG/$repo:$tag" > "$dir/push.log" 2>&1 || { echo "push failed, see $dir/push.log"; return 1; }
      # the extra name would hold the image (and its base's layers) past the next cold prune
      "$RBUILD" rmi "$REG/$repo:$tag" >/dev/null ;;
    buildah)
      $BUILDAH manifest push -q --all --tls-verify=false "bench-$2" "docker://$REG/$repo:$tag" > "$dir/push.log" 2>&1 \
        || { echo "push failed, see $dir/push.log"; return 1; } ;;
  esac
  idx=$(skopeo inspect --raw --tls-verify=false "docker://$REG/$repo:$tag") || { echo "no index at $REG/$repo:$tag"; return 1; }
  got=$(jq -r '[.manifests[]? | select(.platform.os == "linux") | .platform.architecture] | sort | join(",")' <<<"$idx")
  [ "$got" = amd64,arm64 ] || { echo "the index lists platforms '$got', not amd64,arm64"; return 1; }
  for arch in amd64 arm64; do
    dig=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' <<<"$idx")
    man=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
      "http://$REG/v2/$repo/manifests/$dig") || { echo "no $arch manifest $dig"; return 1; }
    layer=$(jq -r '.layers[-1].digest' <<<"$man")
    curl -fsS -o "$dir/$arch.layer" "http://$REG/v2/$repo/blobs/$layer" || { echo "no $arch layer $layer"; return 1; }
    mkdir -p "$dir/$arch" && tar -xf "$dir/$arch.layer" -C "$dir/$arch" || { echo "$arch's layer does not unpack"; return 1; }
    bin=$dir/$arch/usr/local/bin/hello
    [ -f "$bin" ] || { echo "$arch's last layer has no usr/local/bin/hello"; return 1; }
    ft=$(file -b "$bin")
    case $arch in amd64) want="x86-64" ;; arm64) want="ARM aarch64" ;; esac
    [[ $ft == *"$want"* ]] || { echo "$arch's hello is not $want: $ft"; return 1; }
    ft=$want
    root=$WORK/tccbase/rootfs-$arch
    cp "$bin" "$root/tmp/check-hello"
    got=$(chroot "$root" /tmp/check-hello 2>&1)
    rm -f "$root/tmp/check-hello"
    case $arch in amd64) want="amd64 x86_64" ;; arm64) want="arm64 aarch64" ;; esac
    [ "$got" = "$want" ] || { echo "$arch's hello prints '$got', not '$want'"; return 1; }
    printf '%s: ELF %s, prints "%s"; ' "$arch" "$ft" "$got"
  done
  echo "index $(jq -r '.mediaType' <<<"$idx")"
}

declare -A MED RANGE BAD
ROWS=()
CHECKS=()
CHECK_FAILED=""
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
      if [[ $b == kept && $t != floor ]]; then keep_bases "$t" "$m"; warm=(--warmup 1); fi
      prep=$(cold_cmd "$t" "$m" "$b")
      [[ $DROP_CACHES != 1 || $b != pull ]] || prep="$prep; sync; echo 1 > /proc/sys/vm/drop_caches"
      echo "== $label / $t   (loadavg before: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
      if hyperfine --runs "$RUNS" "${warm[@]}" --export-json "$json" --show-output \
           --prepare "$prep" "$(build_cmd "$t" "$m" "$b")" > "$OUT/$m-$b-$t.log" 2>&1; then
        MED[$key]=$(jq -r '.results[0].median * 100 | round / 100' "$json")
        RANGE[$key]=$(jq -r '.results[0] | "\(.min*100|round/100)–\(.max*100|round/100)"' "$json")
        echo "   median ${MED[$key]} s (${RANGE[$key]})" >&2
        if [[ $m == c-tcc-emulated && $t != floor ]]; then
          if line="$t, base $b: $(check_built "$t" "$m" "$b" 2>&1)"; then
            CHECKS+=("ok: $line")
          else
            CHECKS+=("FAILED: $line"); CHECK_FAILED=1; BAD[$key]=1
          fi
          echo "   check: ${CHECKS[-1]}" >&2
        fi
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
  [ -z "${BAD[$1]:-}" ] || v="$v, its image failed the check"
  echo "$v"
}
{
  echo "# multi-platform benchmark $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), runs=$RUNS, $PLATFORMS$([ "$DROP_CACHES" != 1 ] || echo ", DROP_CACHES=1 (pulled rows)")"
  echo "# rbuild ${RBUILD:-} (checkout at $(git -C "$REPO" rev-parse --short HEAD)), $(buildah --version | awk '{print "buildah", $3}'), $(go version 2>/dev/null | awk '{print $3}'), gcc $(gcc -dumpfullversion 2>/dev/null)${HAVE_TCC:+, $(chroot "$TCC_AMD64_ROOT" tcc -v)}; median wall seconds (min–max)"
  echo "| mode | buildah | rbuild | rbuild/buildah | goal | floor (no builder) | rbuild/floor |"
  echo "|---|---|---|---|---|---|---|"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r m b label <<<"$row"
    echo "| $label | $(cell "$m,$b,buildah") | $(cell "$m,$b,rbuild") | $(ratio "${MED[$m,$b,rbuild]:-}" "${MED[$m,$b,buildah]:-}") | ≤ 0.5 | $(cell "$m,$b,floor") | $(ratio "${MED[$m,$b,rbuild]:-}" "${MED[$m,$b,floor]:-}") |"
  done
  for c in "${CHECKS[@]}"; do echo "- check $c"; done
} | tee "$OUT/table.md"
echo "(hyperfine JSON and logs: $OUT)"
[ -z "$CHECK_FAILED" ] || { echo "platforms: a tool's image failed the check (see above)" >&2; exit 1; }
