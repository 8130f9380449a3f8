#!/usr/bin/env python3
"""Per-phase profile of the RUN steps of one build from an RBUILD_SANDBOX_TRACE file.

    RBUILD_SANDBOX_TRACE=/tmp/t rbuild build --no-cache ... && benches/run_step/trace.py /tmp/t
    benches/run_step/trace.py /tmp/t1 /tmp/t2 ...     # the steps of several builds pooled

A step starts at rbuild's `rbuild: run` mark and ends at the next step's (the last step has no
end and is left out, as is the first: the zygote starts in it). For each phase (the first mark
of that name in the step, whichever process wrote it) the script prints the median time from the
step's start and the median gap from the phase before it, in ms; `(next step)` is the time from
the step's start to the next step's start: a step's whole cost in the build.
"""
import statistics
import sys
from collections import defaultdict


def read(path):
    marks = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) == 3 and parts[1].isdigit():
                marks.append((int(parts[1]), parts[2]))
    marks.sort()
    starts = [i for i, (_, name) in enumerate(marks) if name == "rbuild: run"]
    if len(starts) < 3:
        sys.exit(f"{path}: fewer than 3 steps")
    return marks, starts


def main(paths):
    offsets = defaultdict(list)
    steps = 0
    for path in paths:
        steps += profile(path, offsets)
    report(offsets, steps)


def profile(path, offsets):
    marks, starts = read(path)
    steps = 0
    for a, b in zip(starts[1:], starts[2:]):
        t0 = marks[a][0]
        seen = set()
        for t, name in marks[a:b]:
            if name not in seen:
                seen.add(name)
                offsets[name].append((t - t0) / 1000)
        offsets["(next step)"].append((marks[b][0] - t0) / 1000)
        steps += 1
    return steps


def report(offsets, steps):
    rows = sorted(
        ((statistics.median(v), name, len(v)) for name, v in offsets.items()),
        key=lambda r: r[0],
    )
    print(f"{steps} steps; median ms from the step's start (gap from the row above)")
    prev = 0.0
    for at, name, n in rows:
        note = "" if n == steps else f"  [in {n} of {steps} steps]"
        print(f"{at:8.3f} ({at - prev:+7.3f})  {name}{note}")
        prev = at


if __name__ == "__main__":
    main(sys.argv[1:])
