#!/usr/bin/env bash
# The C benchmark's base images (benches/platforms/run.sh), made offline from Debian's mirror,
# once per machine: an OCI layout whose tag `latest` is an image index of two one-layer images.
# KIND says which compiler they carry:
#   gcc  (modes c-emulated and c-cross)
#        linux/amd64  bookworm minbase + gcc libc6-dev (native) + gcc-aarch64-linux-gnu
#                     libc6-dev-arm64-cross (the cross compiler for `FROM --platform=$BUILDPLATFORM`)
#        linux/arm64  bookworm minbase + gcc libc6-dev
#   tcc  (mode c-tcc-emulated: Tiny C Compiler 0.9.27, which compiles, assembles and links in one
#        process, so that little of an emulated build is the compiler)
#        linux/amd64  bookworm minbase + tcc libc6-dev
#        linux/arm64  bookworm minbase + tcc libc6-dev
# The arm64 rootfs is made on the amd64 host: mmdebstrap runs its maintainer scripts through
# qemu-user-static's binfmt_misc handler. Docs, man pages and locales are left out (dpkg
# path-exclude); apt's lists are not kept.
#
#   benches/platforms/c-base.sh DIR [KIND]    # KIND gcc (default) or tcc; prints DIR/oci
#                                             # (made when DIR/oci/index.json has no `latest`)
#
# One DIR per KIND (run.sh: WORK/cbase for gcc, WORK/tccbase for tcc). Steps: `mmdebstrap
# --variant=minbase` writes each rootfs as a tar (DIR/rootfs-ARCH.tar, kept as the cache);
# `umoci new` + `umoci raw add-layer` turn each into an image (gzip layer) with its
# architecture set by `umoci config`; jq writes the index (both manifests with their platforms)
# as a blob and tags it `latest` in DIR/oci/index.json. Needs root, mmdebstrap, umoci, jq,
# qemu-user-static with the aarch64 handler, and deb.debian.org (or MIRROR). gcc ~5-8 minutes,
# tcc ~2-3 minutes.
set -euo pipefail
DIR=${1:?usage: c-base.sh DIR [gcc|tcc]}
KIND=${2:-gcc}
case $KIND in
  gcc) PKGS_AMD64=gcc,libc6-dev,gcc-aarch64-linux-gnu,libc6-dev-arm64-cross
       PKGS_ARM64=gcc,libc6-dev ;;
  tcc) PKGS_AMD64=tcc,libc6-dev
       PKGS_ARM64=tcc,libc6-dev ;;
  *) echo "c-base: unknown KIND $KIND (gcc tcc)" >&2; exit 2 ;;
esac
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
L=$DIR/oci
if [ -f "$L/index.json" ] && jq -e '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "latest")' "$L/index.json" >/dev/null; then
  echo "$L"; exit 0
fi
for t in mmdebstrap umoci jq sha256sum; do
  command -v $t >/dev/null || { echo "c-base: $t is not installed" >&2; exit 1; }
done
mkdir -p "$DIR"
# Reproducible timestamps in the tars (mmdebstrap clamps to it).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
rootfs() {  # arch packages
  local tar=$DIR/rootfs-$1.tar
  [ -s "$tar" ] && return 0
  mmdebstrap --quiet --variant=minbase --arch="$1" --include="$2" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$SUITE" "$DIR/tmp-$1.tar" "$MIRROR" >&2
  mv "$DIR/tmp-$1.tar" "$tar"
}
rootfs amd64 "$PKGS_AMD64" &
A=$!
rootfs arm64 "$PKGS_ARM64" &
B=$!
wait $A && wait $B

rm -rf "$L"
umoci init --layout "$L"
for arch in amd64 arm64; do
  umoci new --image "$L:$arch"
  umoci raw add-layer --image "$L:$arch" "$DIR/rootfs-$arch.tar"
  umoci config --image "$L:$arch" --os=linux --architecture="$arch" \
    --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.cmd=/bin/sh --author=rbuild-benches --history.comment="c-base.sh: $SUITE minbase with $KIND"
done
# The index: each architecture's manifest descriptor with its platform, as one blob tagged latest.
idx=$(jq -c '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] as $r | $r == "amd64" or $r == "arm64")
    | {mediaType, digest, size, platform: {os: "linux", architecture: .annotations["org.opencontainers.image.ref.name"]}}]}' "$L/index.json")
[ "$(jq '.manifests | length' <<<"$idx")" = 2 ] || { echo "c-base: expected two manifests in $L" >&2; exit 1; }
printf '%s' "$idx" > "$L/index.tmp"
sum=$(sha256sum "$L/index.tmp" | cut -d' ' -f1)
size=$(stat -c %s "$L/index.tmp")
mv "$L/index.tmp" "$L/blobs/sha256/$sum"
jq --arg d "sha256:$sum" --argjson s "$size" \
  '.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
    annotations: {"org.opencontainers.image.ref.name": "latest"}}]' "$L/index.json" > "$L/index.json.tmp"
mv "$L/index.json.tmp" "$L/index.json"
echo "$L"
