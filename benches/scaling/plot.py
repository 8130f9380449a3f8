#!/usr/bin/env python3
"""Draws benches/scaling results: one log-log panel per axis, time and peak RSS against N,
each with a dashed line of slope 1 through its first point (linear growth). A curve that stays
on or under its dashed line grows at most linearly. Writes the SVG to argv[2] and prints a
Markdown table (with each step's growth exponent) to stdout. No dependencies beyond Python 3."""
import csv
import math
import sys

TITLES = {
    "files": "context files (COPY . /app)",
    "stages": "independent stages (RUN each)",
    "instrs": "Dockerfile instructions",
    "layer": "layer size, MB (COPY one file)",
}
W, H, PAD = 420, 300, 55


def load(path):
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows.setdefault(r["axis"], []).append(
                (float(r["n"]), float(r["seconds"]), float(r["peak_rss_kb"]) / 1024)
            )
    return rows


def panel(x0, y0, axis, pts):
    xs = [p[0] for p in pts]
    series = [("time, s", [p[1] for p in pts], "#1f6feb"), ("peak RSS, MB", [p[2] for p in pts], "#d1242f")]
    lo_x, hi_x = math.log10(min(xs)), math.log10(max(xs))
    ys = [max(v, 1e-3) for _, vals, _ in series for v in vals]
    lo_y, hi_y = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)) + 0.3)
    if hi_x == lo_x:
        hi_x += 1

    def sx(x):
        return x0 + PAD + (math.log10(x) - lo_x) / (hi_x - lo_x) * (W - 2 * PAD)

    def sy(y):
        y = max(y, 1e-3)
        return y0 + H - PAD + (math.log10(y) - lo_y) / (hi_y - lo_y) * -(H - 2 * PAD)

    clip = f"clip-{axis}"
    out = [f'<clipPath id="{clip}"><rect x="{x0 + PAD}" y="{y0 + PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}"/></clipPath>']
    out.append(f'<text x="{x0 + W / 2}" y="{y0 + 20}" text-anchor="middle" font-weight="bold">{TITLES.get(axis, axis)}</text>')
    out.append(f'<rect x="{x0 + PAD}" y="{y0 + PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" fill="none" stroke="#888"/>')
    for x in xs:
        out.append(f'<text x="{sx(x):.1f}" y="{y0 + H - PAD + 16}" text-anchor="middle" font-size="11">{x:,.0f}</text>')
    for e in range(lo_y, hi_y + 1):
        y = sy(10 ** e)
        out.append(f'<line x1="{x0 + PAD}" x2="{x0 + W - PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 + PAD - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{10 ** e:g}</text>')
    for k, (name, vals, color) in enumerate(series):
        path = " ".join(f"{sx(x):.1f},{sy(v):.1f}" for x, v in zip(xs, vals))
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, v in zip(xs, vals):
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(v):.1f}" r="3" fill="{color}"/>')
        # slope 1 through the first point
        x_a, v_a, x_b = xs[0], vals[0], xs[-1]
        out.append(
            f'<line x1="{sx(x_a):.1f}" y1="{sy(v_a):.1f}" x2="{sx(x_b):.1f}" y2="{sy(v_a * x_b / x_a):.1f}" '
            f'stroke="{color}" stroke-dasharray="4 4" stroke-opacity="0.6" clip-path="url(#{clip})"/>'
        )
        out.append(f'<text x="{x0 + PAD + 6}" y="{y0 + PAD + 14 + 14 * k}" font-size="11" fill="{color}">{name}</text>')
    return out


def main():
    rows = load(sys.argv[1])
    axes = [a for a in ["files", "stages", "instrs", "layer"] if a in rows] + [a for a in rows if a not in TITLES]
    cols = 2
    nrows = (len(axes) + 1) // 2
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * cols}" height="{H * nrows + 30}" font-family="sans-serif">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="{H * nrows + 20}" font-size="11">dashed: linear growth from the first point (slope 1 on log-log axes)</text>']
    for i, a in enumerate(axes):
        svg += panel((i % cols) * W, (i // cols) * H, a, rows[a])
    svg.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(svg) + "\n")
    print("| axis | N | time, s | peak RSS, MB | time exponent vs previous N | RSS exponent |")
    print("|---|---|---|---|---|---|")
    for a in axes:
        prev = None
        for n, t, m in rows[a]:
            if prev:
                pn, pt, pm = prev
                et = math.log(max(t, 1e-3) / max(pt, 1e-3)) / math.log(n / pn)
                em = math.log(m / pm) / math.log(n / pn)
                ex = f"{et:.2f} | {em:.2f}"
            else:
                ex = "– | –"
            print(f"| {a} | {n:,.0f} | {t:.2f} | {m:.0f} | {ex} |")
            prev = (n, t, m)


main()
