#!/usr/bin/env bash
# Builds the example image offline and runs something from it:
#   1. a busybox base image, built by rbuild itself from Debian's busybox-static (FROM scratch);
#   2. examples/hello on top of it, exported as a root filesystem (-o type=local);
#   3. the image's command, run in that root filesystem with chroot.
# Needs root (the RUN sandbox uses namespaces and overlayfs) and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /bin/busybox ] || { echo "examples/run.sh: install busybox-static first (apt-get install busybox-static)" >&2; exit 1; }
cargo build --release -q -p rbuild
RBUILD=${RBUILD:-$PWD/target/release/rbuild}
work=$(mktemp -d /tmp/rbuild-example.XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/busybox"
cp /bin/busybox "$work/busybox/busybox"
cat > "$work/busybox/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /etc /tmp && chmod 1777 /tmp && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'root:x:0:' > /etc/group
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["sh"]
DOCKERFILE
"$RBUILD" build --progress=plain -t busybox:latest "$work/busybox"
"$RBUILD" build --progress=plain -t hello:1.0 -o "type=local,dest=$work/rootfs" -o type=image examples/hello
"$RBUILD" images
echo "--- running the image's command in its root filesystem:"
chroot "$work/rootfs" /bin/sh -c 'cat $0 /hello/credits' /hello/GREETING.txt
