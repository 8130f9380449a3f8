#!/usr/bin/env bash
# Builds rbuild's own image (release/Dockerfile) with rbuild itself, offline: the static binary
# of scripts/release-static.sh, the host's CA certificates (Debian's ca-certificates) and, for
# `--target debug`, the host's static busybox (Debian's busybox-static).
#
#   scripts/release-image.sh [rbuild build flags…]
#   scripts/release-image.sh -t rbuild:latest                      # into the local store
#   scripts/release-image.sh -o type=oci,dest=rbuild.tar           # an OCI archive
#   scripts/release-image.sh --target debug -t reg.example/rbuild:debug --push
#
# RBUILD_BIN: the static binary to ship (default target/x86_64-unknown-linux-musl/release/rbuild
# under CARGO_TARGET_DIR or target/); RBUILD: the rbuild that builds (default: RBUILD_BIN
# itself); CA_CERTS: the CA bundle (default /etc/ssl/certs/ca-certificates.crt);
# BUSYBOX: a static busybox (default /bin/busybox).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${RBUILD_BIN:-${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-musl/release/rbuild}
builder=${RBUILD:-$bin}
certs=${CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
busybox=${BUSYBOX:-/bin/busybox}

[ -x "$bin" ] || { echo "release-image: no static binary at $bin: run scripts/release-static.sh" >&2; exit 1; }
case "$(file -b "$bin")" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) echo "release-image: $bin is not a static executable: $(file -b "$bin")" >&2; exit 1 ;;
esac
[ -s "$certs" ] || { echo "release-image: no CA bundle at $certs: apt-get install ca-certificates" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The context: the image's files with their modes.
mkdir -p "$work/ctx/rootfs/usr/local/bin" "$work/ctx/rootfs/tmp" "$work/ctx/rootfs/root" "$work/certs"
chmod 1777 "$work/ctx/rootfs/tmp"
chmod 0700 "$work/ctx/rootfs/root"
install -m 0755 "$bin" "$work/ctx/rootfs/usr/local/bin/rbuild"
install -m 0644 "$certs" "$work/certs/ca-certificates.crt"
# busybox and a link per applet (read only by `--target debug`; an empty directory otherwise).
mkdir -p "$work/busybox"
if [ -x "$busybox" ] && file -b "$busybox" | grep -q "statically linked"; then
  install -m 0755 "$busybox" "$work/busybox/busybox"
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$work/busybox/$applet"
  done
elif printf '%s\n' "$@" | grep -qx debug; then
  echo "release-image: --target debug needs a static busybox at $busybox (apt-get install busybox-static)" >&2
  exit 1
fi

"$builder" build -f "$repo/release/Dockerfile" \
  --build-context "certs=$work/certs" \
  --build-context "busybox=$work/busybox" \
  "$@" "$work/ctx"
