#!/usr/bin/env bash
# The floor of B3touch (issue 17 item 1), with no builder: the kernel work any builder that
# keeps a layer per COPY and names it by its digest must do when one of B3's 25,003 copied
# files changed — a new tree of the copied files made from the previous one (`cp -al`: one hard
# link per file, one mkdir per directory) and the tar of that tree read once (GNU tar into a
# pipe: 280 MB; the SHA-256 of it, 0.16 s at rbuild's 1.75 GB/s, runs beside it on the other
# core and is not counted) — against rbuild's B3touch build, in the same run. Not counted
# either: walking and filtering the 50,000-file context (the floor is handed the selected
# tree), the image config and store records.
#
#   RUNS=10 benches/peer/b3touch_floor.sh        (after benches/peer/bench.sh made its data)
#
# Each floor run writes a tree of its own, removed only at the end (see b4_floor.sh: ext4
# without a journal scans past recently freed inodes). Environment: RUNS [10], RBUILD (binary;
# built when unset), WORK [/var/tmp/rbuild-peer]. Root.
set -euo pipefail
. "$(dirname "$0")/env.sh"
RUNS=${RUNS:-10}
use_rbuild
B3=$BENCH_DATA/b3
[ -f "$B3/Dockerfile" ] || { echo "b3touch_floor: no $B3 (run benches/peer/bench.sh first)" >&2; exit 1; }
F=$WORK/b3touch-floor
rm -rf "$F" && mkdir -p "$F/runs"
# The tree B3's COPY makes (its .dockerignore applied), as the previous snapshot.
printf 'FROM scratch\nCOPY . /app\n' | "$RBUILD" build -q -o "type=local,dest=$F/prev" -f - "$B3" >/dev/null
export F
cat > "$F/once.sh" <<'SH'
#!/bin/sh
set -e
W=$(mktemp -d "$F/runs/XXXXXX")
cp -al "$F/prev/app" "$W/app"
tar -C "$W" --sort=name -cf - app | cat >/dev/null
SH
chmod +x "$F/once.sh"
TOUCHED=$B3/src/pkg000/mod00/file_00000.txt
touch_cmd="printf '%s' \"\$(date +%s%N)\" | dd of=$TOUCHED conv=notrunc status=none; sync"
"$RBUILD" build -q -t rb-b3 "$B3" >/dev/null
echo "b3touch_floor: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$F/h.json" -n floor "$F/once.sh" \
  > "$F/floor.log" 2>&1 || { cat "$F/floor.log"; exit 1; }
hyperfine --runs "$RUNS" --warmup 1 --prepare "$touch_cmd" --export-json "$F/r.json" \
  -n rbuild "$RBUILD build -q -t rb-b3 $B3 >/dev/null" > "$F/rbuild.log" 2>&1 \
  || { cat "$F/rbuild.log"; exit 1; }
echo "b3touch_floor: done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$F/runs"
jq -s -r '(.[0].results[0].median) as $f | (.[1].results[0].median) as $r
  | "B3touch floor (cp -al + tar read, no builder): \($f*1000|round) ms; rbuild B3touch: \($r*1000|round) ms; rbuild/floor \(($r/$f)*100|round/100)"' \
  "$F/h.json" "$F/r.json"
