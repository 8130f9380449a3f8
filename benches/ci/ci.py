#!/usr/bin/env python3
"""Helpers of benches/ci/run.sh.

  ci.py bytes LOG FROM        what the counting registry served since line FROM of its JSON log
                              (1-based, exclusive): "BLOB_BYTES BLOB_GETS ALL_GET_BYTES"
  ci.py blobs LOG FROM        the blob GETs since line FROM, one "DIGEST BYTES URI" a line
  ci.py manifest-size         stdin: an image manifest (JSON); prints config + layer sizes
  ci.py table TSV             medians of run.sh's measurements, as Markdown tables

The counting registry is Debian's docker-registry (CNCF distribution 2.8) with
`log.formatter: json`, `log.level: info`: every request ends with a "response completed"
record holding the method, URI, status and `http.response.written` (body bytes sent).
"""
import json
import statistics
import sys


def records(log, start):
    with open(log, errors="replace") as f:
        for n, line in enumerate(f, 1):
            if n <= start or not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("msg") == "response completed":
                yield r


def gets(log, start):
    for r in records(log, start):
        if r.get("http.request.method") == "GET" and r.get("http.response.status") in (200, 206):
            yield r["http.request.uri"], int(r.get("http.response.written", 0))


def cmd_bytes(log, start):
    blob = nblob = total = 0
    for uri, n in gets(log, int(start)):
        total += n
        if "/blobs/sha256:" in uri:
            blob += n
            nblob += 1
    print(blob, nblob, total)


def cmd_blobs(log, start):
    for uri, n in gets(log, int(start)):
        if "/blobs/sha256:" in uri:
            print(uri.rsplit("/", 1)[1], n, uri)


def cmd_manifest_size():
    m = json.load(sys.stdin)
    print(m["config"]["size"] + sum(l["size"] for l in m["layers"]))


def mb(n):
    return "%.1f MB" % (n / 1e6) if n >= 1e5 else "%d kB" % round(n / 1e3) if n >= 1e3 else "%d B" % n


def cmd_table(tsv):
    rows = {}
    with open(tsv) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            sect, scen, tool, run, wall, blob, nblob, total, ok = line.rstrip("\n").split("\t")
            rows.setdefault((sect, scen, tool), []).append(
                (float(wall), int(blob), int(nblob), int(total), ok == "ok"))

    def med(key, i=0):
        vals = [r[i] for r in rows.get(key, []) if r[4]]
        if not vals:
            return None
        return statistics.median(vals)

    def fails(key):
        return sum(1 for r in rows.get(key, []) if not r[4])

    def fmt_wall(key):
        m = med(key)
        if m is None:
            return "FAIL" if rows.get(key) else "-"
        walls = sorted(r[0] for r in rows[key] if r[4])
        s = "%.2f" % m
        if len(walls) > 1:
            s += " (%.2f–%.2f)" % (walls[0], walls[-1])
        if fails(key):
            s += " %d FAIL" % fails(key)
        return s

    def fmt_bytes(key):
        ok = [r for r in rows.get(key, []) if r[4]]
        if not ok:
            return "-"
        b = statistics.median(r[1] for r in ok)
        lo, hi = min(r[1] for r in ok), max(r[1] for r in ok)
        s = "%s (%d B) in %g blobs" % (mb(b), b, statistics.median(r[2] for r in ok))
        if hi - lo > 0.01 * hi:
            s += " (%s–%s)" % (mb(lo), mb(hi))
        return s

    def ratio(a, b, goal):
        if a is None or b is None or b == 0:
            return "-"
        r = a / b
        return "%.2f %s" % (r, "✓" if r <= goal else "✗")

    scen = [s for s in ("B1", "B3", "B3same") if any(k[0] == "B" and k[1] == s for k in rows)]
    if scen:
        print("| runner B | rbuild wall s | BuildKit wall s | rbuild/BuildKit (goal ≤ 0.3) "
              "| rbuild B downloaded | BuildKit B downloaded | runner A wall s: rbuild, BuildKit |")
        print("|---|---|---|---|---|---|---|")
        for s in scen:
            a = ", ".join(fmt_wall(("A", s.replace("same", ""), t)) for t in ("rbuild", "docker"))
            print("| %s | %s | %s | %s | %s | %s | %s |" % (
                s, fmt_wall(("B", s, "rbuild")), fmt_wall(("B", s, "docker")),
                ratio(med(("B", s, "rbuild")), med(("B", s, "docker")), 0.3),
                fmt_bytes(("B", s, "rbuild")), fmt_bytes(("B", s, "docker")), a))
    xfer = [k for k in ("pull", "push", "push2", "pushraw") if any(r[0] == k for r in rows)]
    if xfer:
        print()
        print("| transfer | rbuild wall s | skopeo copy wall s | rbuild/skopeo (goal ≤ 1.0) "
              "| rbuild downloaded | skopeo downloaded |")
        print("|---|---|---|---|---|---|")
        for k in xfer:
            # (rbuild's row, skopeo's row) compared on one line
            mine, theirs = {"pull": ("pull", "pull"), "push": ("push", "push"),
                            "push2": ("push2", "push"), "pushraw": ("push", "pushraw")}[k]
            what = {"pull": "pull debian:bookworm-slim (rbuild: into an empty store)",
                    "push": "push B3's image (rbuild: built in a fresh store, so it compresses; skopeo: the gzip archive rbuild saved)",
                    "push2": "push B3's image again (rbuild: gzip blob already in its store)",
                    "pushraw": "push B3's image from its uncompressed form (rbuild: right after the build; skopeo: an uncompressed OCI archive, which it gzips as it pushes)"}[k]
            print("| %s | %s | %s | %s | %s | %s |" % (
                what, fmt_wall((mine, mine, "rbuild")), fmt_wall((theirs, theirs, "skopeo")),
                ratio(med((mine, mine, "rbuild")), med((theirs, theirs, "skopeo")), 1.0),
                fmt_bytes((mine, mine, "rbuild")), fmt_bytes((theirs, theirs, "skopeo"))))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"bytes": cmd_bytes, "blobs": cmd_blobs, "manifest-size": cmd_manifest_size,
     "table": cmd_table}[cmd](*args)
