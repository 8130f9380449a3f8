# What bench.sh and check.sh share; source it (bash): . "$(dirname "$0")/env.sh"
# The benchmark helpers, where the repository and the scratch directory are, and use_rbuild.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/var/tmp/rbuild-peer}
export BENCH_DATA=${BENCH_DATA:-$WORK/data}
DOCKER=/usr/bin/docker

# use_rbuild: sets RBUILD (built with `cargo build --release -p rbuild` when unset) and points
# it at the store under WORK, with a config that takes docker.io images from the local registry.
use_rbuild() {
  if [ -z "${RBUILD:-}" ]; then
    (cd "$REPO" && cargo build --release -p rbuild -q)
    RBUILD=$REPO/target/release/rbuild
  fi
  export RBUILD_ROOT=$WORK/store RBUILD_CONFIG=$WORK/config.toml
  mirror_config "$RBUILD_CONFIG"
}
