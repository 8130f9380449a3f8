#!/bin/sh
# Context hashing benchmark on B3's context (issue #4). Needs root (drops the page cache).
#
#   benches/context/run.sh [B3_DIR] [MANY_FILES_DIR]
#
# B3_DIR defaults to /var/tmp/ctxbench/b3 (make it with
#   BENCH_DATA=/var/tmp/ctxbench python3 ../shared/bench/scenarios/gen.py).
# MANY_FILES_DIR (default /var/tmp/ctxbench/many) gets 1,000,000 small files on first use.
# Prints, in one run: cold hashing by rbuild-context vs `tar -cf - FILES | sha256sum` and vs
# `tar -cf - FILES | <in-process sha2>` (sha256sum has no SHA-NI here), the re-verify of an
# unchanged context through the stat cache, the re-verify after one file changed, and the peak
# RSS (GNU time's "Maximum resident set size") on the 1,000,000-file context of `digest` (open +
# whole-context digest, what `rbuild debug context` does), `key` (open + the digest of
# select(".") without its entries: what keying `COPY . /x` needs) and `hash` (open + the
# `SelectionView` of "." as the build keys `COPY . /x`, no stat cache), then of a whole
# `rbuild build` of FROM scratch + COPY . / over it, cold and no-op (its stat cache spills
# the records of files hashed in the build to disk in sorted runs). SKIP_COLD=1 skips the cold runs,
# SKIP_MANY=1 the 1,000,000-file runs. This kernel shares CPU per session (autogroup): to see
# the figures of an unshared machine on a busy one, run it in its own session at autogroup
# nice -15: setsid sh -c 'echo -15 > /proc/$$/autogroup; exec benches/context/run.sh'.
set -eu
B3=${1:-/var/tmp/ctxbench/b3}
MANY=${2:-/var/tmp/ctxbench/many}
RUNS=${RUNS:-3}
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
cargo build --release -q -p rbuild-context --benches
BIN="$here/$(ls -t target/release/deps/context_hash-* | grep -v '\.d$' | head -1)"
work=$(mktemp -d /var/tmp/ctxbench-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$BIN" list "$B3" "$work/files.txt"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load: $(cut -d' ' -f1-3 /proc/loadavg), files: $(wc -l < "$work/files.txt")"
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
ms() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.0f", (e - s) * 1000 }'; }
now() { date +%s.%N; }
[ "${SKIP_COLD:-0}" = 1 ] || for i in $(seq "$RUNS"); do
  drop; s=$(now); (cd "$B3" && tar -cf - -T "$work/files.txt" | sha256sum > /dev/null); e=$(now)
  t1=$(ms "$s" "$e")
  drop; s=$(now); (cd "$B3" && tar -cf - -T "$work/files.txt" | "$BIN" sha256-stdin > /dev/null); e=$(now)
  t2=$(ms "$s" "$e")
  drop; rm -f "$work/stat.json"; s=$(now); "$BIN" hash "$B3" "$work/stat.json" > /dev/null; e=$(now)
  t3=$(ms "$s" "$e")
  echo "cold run $i: tar|sha256sum ${t1} ms, tar|sha2 ${t2} ms, rbuild-context (walk+hash+save cache) ${t3} ms"
done
sleep 1  # the stat cache file must be newer than the files' timestamps (racy rule)
"$BIN" hash "$B3" "$work/stat.json" > /dev/null
for i in $(seq "$RUNS"); do
  /usr/bin/time -f '%e %U %S' -o "$work/t" "$BIN" hash "$B3" "$work/stat.json" > /dev/null
  read -r wall user sys < "$work/t"
  echo "unchanged re-verify $i: wall ${wall}s, cpu user ${user}s + sys ${sys}s (process start to exit)"
done
f="$B3/$(head -1 "$work/files.txt")"
cp -p "$f" "$work/orig"
for i in $(seq "$RUNS"); do
  printf 'changed %s %s\n' "$i" "$(date +%s%N)" >> "$f"
  /usr/bin/time -f '%e %U %S' -o "$work/t" "$BIN" hash "$B3" "$work/stat.json" > /dev/null
  read -r wall user sys < "$work/t"
  echo "one file changed $i: wall ${wall}s, cpu user ${user}s + sys ${sys}s (includes rewriting the stat cache)"
done
cp -p "$work/orig" "$f"
[ "${SKIP_MANY:-0}" = 1 ] || {
if [ ! -e "$MANY/.complete" ]; then
  rm -rf "$MANY"; "$BIN" gen "$MANY" 1000000; touch "$MANY/.complete"
fi
for mode in digest key hash; do
  /usr/bin/time -v "$BIN" $mode "$MANY" 2> "$work/time.txt" > "$work/many.txt"
  echo "1,000,000 files, $mode: $(cut -d' ' -f2,3 "$work/many.txt"), peak RSS $(awk -F': ' '/Maximum resident/ { printf "%.1f MB", $2 / 1024 }' "$work/time.txt")"
done
# End to end: `rbuild build` of the context's Dockerfile (FROM scratch + COPY . /) into a
# throw-away store, cold then no-op (needs ~5 GB free for the store; removed afterwards).
cargo build --release -q -p rbuild
store=$(mktemp -d /var/tmp/ctxbench-store.XXXXXX)
for run in cold no-op; do
  RBUILD_ROOT=$store /usr/bin/time -v target/release/rbuild build -q -t ctxbench-many "$MANY" \
    2> "$work/time.txt" > /dev/null
  echo "1,000,000 files, rbuild build ($run): $(awk -F': ' '/Elapsed/ { print $2 }' "$work/time.txt") wall, peak RSS $(awk -F': ' '/Maximum resident/ { printf "%.1f MB", $2 / 1024 }' "$work/time.txt")"
done
rm -rf "$store"
}
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
