#!/usr/bin/env bash
# Rootless builds: `FROM busybox` + five `RUN true N` steps, --no-cache, --network=none, as an
# unprivileged user: rbuild rootless against buildah rootless (its own user namespace and
# native overlay, each step committed with --layers), with rbuild as root and BuildKit (dockerd,
# root) as references, all interleaved by hyperfine in one run. The base image comes from the
# local registry (127.0.0.1:5000/busybox:latest) and is pulled during the warm-up run.
#
#   RUNS=10 RBUILD=target/release/rbuild benches/rootless/run.sh
# Needs root (to run as the user), the user (default rbtest, with /etc/subuid and /etc/subgid
# ranges; see crates/rbuild/tests/rootless.rs), uidmap, buildah, hyperfine, the registry.
set -euo pipefail
RUNS=${RUNS:-10}
U=${RBUILD_BENCH_USER:-rbtest}
RBUILD=$(realpath "${RBUILD:-$(dirname "$0")/../../target/release/rbuild}")
DATA=${DATA:-/var/tmp/rbuild-rootless-bench}
HOME_U=$(getent passwd "$U" | cut -d: -f6)

rm -rf "$DATA" && mkdir -p "$DATA/ctx" "$DATA/run" && chmod 755 "$DATA"
printf 'FROM 127.0.0.1:5000/busybox:latest\n' > "$DATA/ctx/Dockerfile"
for i in 1 2 3 4 5; do echo "RUN true $i" >> "$DATA/ctx/Dockerfile"; done
chown -R "$U": "$DATA/run" && chmod -R a+rX "$DATA/ctx" && chmod 700 "$DATA/run"
cp "$RBUILD" "$DATA/rbuild" && chmod 755 "$DATA/rbuild"

as_user="setpriv --reuid=$U --regid=$U --init-groups env HOME=$HOME_U XDG_RUNTIME_DIR=$DATA/run"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$DATA/result.json" \
  -n rbuild-rootless "$as_user RBUILD_ROOT=$HOME_U/.rbuild-bench-store $DATA/rbuild build -q --no-cache --network=none $DATA/ctx" \
  -n buildah-rootless "$as_user buildah bud --storage-driver=overlay --tls-verify=false --layers --no-cache --network=none -q $DATA/ctx" \
  -n rbuild-root "RBUILD_ROOT=$DATA/root-store $DATA/rbuild build -q --no-cache --network=none $DATA/ctx" \
  -n buildkit-root "DOCKER_BUILDKIT=1 /usr/bin/docker build -q --no-cache --network=none $DATA/ctx" \
  >/dev/null
python3 - "$DATA/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] for k, v in r.items()}
for k, v in med.items():
    print(f"{k:18} median {v*1000:8.1f} ms  (min {r[k]['min']*1000:.1f}, max {r[k]['max']*1000:.1f})")
print(f"rbuild-rootless / buildah-rootless = {med['rbuild-rootless']/med['buildah-rootless']:.2f}")
print(f"rbuild-rootless / rbuild-root      = {med['rbuild-rootless']/med['rbuild-root']:.2f}")
print(f"rbuild-root / buildkit-root        = {med['rbuild-root']/med['buildkit-root']:.2f}")
PY
runuser -u "$U" -- env HOME="$HOME_U" XDG_RUNTIME_DIR="$DATA/run" buildah rmi --prune >/dev/null 2>&1 || true
# The store holds files of the subordinate ids: removed as root.
rm -rf "$HOME_U/.rbuild-bench-store" "$DATA/root-store"
