#!/usr/bin/env bash
# The static (musl) release build of rbuild: one self-contained x86_64 binary, with no dynamic
# loader and no libc of the host, for CI images (`release/Dockerfile`, `FROM scratch`) and for
# copying onto any Linux machine.
#
#   scripts/release-static.sh        → target/x86_64-unknown-linux-musl/release/rbuild
#
# Needs the Rust target (`rustup target add x86_64-unknown-linux-musl`) and a musl C compiler
# for the C code of the dependencies (ring, zstd-sys, bzip2-sys): Debian's `musl-tools`
# (`musl-gcc`). The result is checked to be a static executable; the script fails otherwise.
# CARGO_TARGET_DIR is honoured (the binary lands under it).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-musl

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  echo "release-static: the Rust target $TARGET is missing: rustup target add $TARGET" >&2
  exit 1
fi
if ! command -v musl-gcc >/dev/null; then
  echo "release-static: musl-gcc is missing: apt-get install musl-tools" >&2
  exit 1
fi

# musl-gcc wraps the host gcc with musl's headers and libc; C++ is not needed by any dependency.
export CC_x86_64_unknown_linux_musl=musl-gcc
export AR_x86_64_unknown_linux_musl=ar
# Static linking is the musl target's default; say it anyway, so a changed default cannot
# quietly produce a dynamic binary.
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static"
cargo build --locked --release --target "$TARGET" -p rbuild

bin="${CARGO_TARGET_DIR:-target}/$TARGET/release/rbuild"
# `file` says "statically linked" (or "static-pie linked"); ldd refuses a static binary.
desc=$(file -b "$bin")
case "$desc" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) echo "release-static: $bin is not static: $desc" >&2; exit 1 ;;
esac
if ldd "$bin" >/dev/null 2>&1 && ! ldd "$bin" 2>&1 | grep -q "not a dynamic executable\|statically linked"; then
  echo "release-static: ldd lists libraries for $bin:" >&2
  ldd "$bin" >&2
  exit 1
fi
echo "$bin"
