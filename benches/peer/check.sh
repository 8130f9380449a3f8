#!/bin/bash
# Checks that rbuild builds each peer-benchmark scenario like BuildKit does: the same files
# (path, type, mode, owner, contents) in the exported root filesystem, and the same image
# config fields (Env, WorkingDir, User, ExposedPorts, Cmd, Entrypoint).
#
#   benches/peer/check.sh              # b1 b3 b4
#   SCENARIOS="b4" benches/peer/check.sh
#
# Same environment as bench.sh (RBUILD, WORK). Exits non-zero when any scenario differs;
# the listings and their diff stay under $WORK/check/.
set -euo pipefail
. "$(dirname "$0")/env.sh"
SCENARIOS=${SCENARIOS:-"b1 b3 b4"}
CHECK=$WORK/check
use_rbuild
python3 "$HERE/gen.py" >/dev/null

# The config fields both builders set, as sorted JSON.
CONFIG_FIELDS='{Env, WorkingDir, User, ExposedPorts, Cmd, Entrypoint} | with_entries(.value |= (. // null | if . == "" then null else . end))'

status=0
for s in $SCENARIOS; do
  ctx=$BENCH_DATA/$s
  rm -rf "$CHECK/$s"; mkdir -p "$CHECK/$s"
  echo "== $s" >&2
  "$RBUILD" build -q -t "rb-check-$s" -o "type=tar,dest=$CHECK/$s/rbuild-root.tar" \
    -o "type=docker,dest=$CHECK/$s/rbuild.tar" "$ctx" >"$CHECK/$s/rbuild.log" 2>&1 ||
    { echo "   rbuild FAILED (log: $CHECK/$s/rbuild.log)" >&2; tail -20 "$CHECK/$s/rbuild.log" >&2; status=1; continue; }
  # BuildKit's own root filesystem: `docker export` of a created (never started) container,
  # as its `-o type=local` writes every file as the calling user.
  DOCKER_BUILDKIT=1 $DOCKER build --network=none -q -t "rb-check-$s" "$ctx" >"$CHECK/$s/buildkit.log" 2>&1
  cid=$($DOCKER create "rb-check-$s")
  $DOCKER export -o "$CHECK/$s/buildkit-root.tar" "$cid"
  $DOCKER rm "$cid" >/dev/null

  python3 "$HERE/listing.py" --skip-runtime "$CHECK/$s/rbuild-root.tar" > "$CHECK/$s/rbuild.list"
  python3 "$HERE/listing.py" --skip-runtime "$CHECK/$s/buildkit-root.tar" > "$CHECK/$s/buildkit.list"
  skopeo inspect --config "docker-archive:$CHECK/$s/rbuild.tar" | jq -S ".config | $CONFIG_FIELDS" > "$CHECK/$s/rbuild.config"
  $DOCKER image inspect "rb-check-$s" | jq -S ".[0].Config | $CONFIG_FIELDS" > "$CHECK/$s/buildkit.config"

  if diff "$CHECK/$s/buildkit.list" "$CHECK/$s/rbuild.list" > "$CHECK/$s/files.diff" &&
     diff "$CHECK/$s/buildkit.config" "$CHECK/$s/rbuild.config" > "$CHECK/$s/config.diff"; then
    echo "   same: $(wc -l < "$CHECK/$s/rbuild.list") entries, config equal" >&2
  else
    echo "   DIFFERENT (BuildKit < > rbuild):" >&2
    cat "$CHECK/$s/files.diff" "$CHECK/$s/config.diff" 2>/dev/null | head -40 >&2
    status=1
  fi
  # The exported trees are big (b3: 280 MB); keep only listings and diffs.
  rm -f "$CHECK/$s/rbuild-root.tar" "$CHECK/$s/buildkit-root.tar" "$CHECK/$s/rbuild.tar"
done
"$RBUILD" rmi $(printf 'rb-check-%s ' $SCENARIOS) >/dev/null 2>&1 || true
$DOCKER rmi $(printf 'rb-check-%s ' $SCENARIOS) >/dev/null 2>&1 || true
exit $status
