#!/usr/bin/env python3
"""Plots `zring bench --json` output as two SVG files, with nothing but the standard library:

  latency.svg     one-way latency percentiles (p50 solid, p99 dashed, p99.9 dotted) against message
                  size, one panel per transport, zring beside libzmq and the bare limit;
  throughput.svg  streaming bandwidth (MB/s) against message size, one panel per transport.

Usage:  cargo run --release -p zring-cli -- bench --json > bench.json
        python3 scripts/plot.py bench.json docs/plots [--placement split]
"""

import argparse
import json
import math
import os
import sys

COLOURS = {"zring": "#d62728", "libzmq": "#1f77b4", "bare": "#7f7f7f"}
DASHES = {"p50": "", "p99": "6,3", "p99.9": "2,3", "bandwidth": ""}
PANEL_W, PANEL_H, MARGIN = 300, 220, 60


def size_label(n):
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def log_ticks(lo, hi):
    """Powers of ten covering [lo, hi]."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if first == last:
        last += 1
    return [10.0**e for e in range(first, last + 1)]


def fmt(v):
    return f"{v:g}" if v < 1e5 else f"1e{int(round(math.log10(v)))}"


def panel(out, x0, y0, title, ylabel, series):
    """One log-log panel. `series`: (implementation, metric, [(size, value)])."""
    points = [p for _, _, pts in series for p in pts]
    if not points:
        return
    sizes = sorted({s for s, _ in points})
    ticks = log_ticks(min(v for _, v in points), max(v for _, v in points))
    lo, hi = math.log10(ticks[0]), math.log10(ticks[-1])
    sx_lo, sx_hi = math.log2(sizes[0]), math.log2(sizes[-1])

    def x(size):
        span = (sx_hi - sx_lo) or 1.0
        return x0 + (math.log2(size) - sx_lo) / span * PANEL_W

    def y(v):
        return y0 + PANEL_H - (math.log10(v) - lo) / (hi - lo) * PANEL_H

    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 - 12}" text-anchor="middle" '
               f'font-weight="bold">{title}</text>')
    out.append(f'<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" fill="none" '
               f'stroke="#333"/>')
    for t in ticks:
        out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 4}" y="{y(t) + 4:.1f}" text-anchor="end">{fmt(t)}</text>')
    for s in sizes:
        out.append(f'<text x="{x(s):.1f}" y="{y0 + PANEL_H + 16}" '
                   f'text-anchor="middle">{size_label(s)}</text>')
    out.append(f'<text transform="translate({x0 - 44},{y0 + PANEL_H / 2}) rotate(-90)" '
               f'text-anchor="middle">{ylabel}</text>')
    for imp, metric, pts in series:
        if not pts:
            continue
        path = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in sorted(pts))
        dash = f' stroke-dasharray="{DASHES[metric]}"' if DASHES[metric] else ""
        out.append(f'<polyline class="series" data-imp="{imp}" data-metric="{metric}" '
                   f'points="{path}" fill="none" stroke="{COLOURS[imp]}" stroke-width="2"{dash}/>')


def figure(rows, kind, metrics, ylabel, placement):
    rows = [r for r in rows if r["kind"] == kind and r["placement"] == placement
            and r["metric"] in metrics]
    transports = []
    for r in rows:
        if r["transport"] not in transports:
            transports.append(r["transport"])
    width = MARGIN + len(transports) * (PANEL_W + MARGIN)
    height = PANEL_H + 2 * MARGIN + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for i, t in enumerate(transports):
        series = []
        for imp in COLOURS:
            for m in metrics:
                pts = [(r["size"], r[imp]) for r in rows
                       if r["transport"] == t and r["metric"] == m and r.get(imp)]
                series.append((imp, m, pts))
        panel(out, MARGIN + i * (PANEL_W + MARGIN), MARGIN, f"{t} ({placement})", ylabel, series)
    legend_y = height - 14
    lx = MARGIN
    for imp, colour in COLOURS.items():
        out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 28}" y="{legend_y}">{imp}</text>')
        lx += 90
    if len(metrics) > 1:
        for m in metrics:
            dash = f' stroke-dasharray="{DASHES[m]}"' if DASHES[m] else ""
            out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
                       f'stroke="#333" stroke-width="2"{dash}/>')
            out.append(f'<text x="{lx + 28}" y="{legend_y}">{m}</text>')
            lx += 80
    out.append("</svg>")
    return "\n".join(out) + "\n", len(transports)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="output of `zring bench --json` (- for standard input)")
    ap.add_argument("out", help="directory for latency.svg and throughput.svg")
    ap.add_argument("--placement", default="split", help="which placement to plot")
    args = ap.parse_args()
    src = sys.stdin if args.json == "-" else open(args.json, encoding="utf-8")
    rows = json.load(src)
    os.makedirs(args.out, exist_ok=True)
    made = 0
    for name, kind, metrics, ylabel in (
        ("latency.svg", "latency", ["p50", "p99", "p99.9"], "one-way latency (us)"),
        ("throughput.svg", "throughput", ["bandwidth"], "bandwidth (MB/s)"),
    ):
        svg, panels = figure(rows, kind, metrics, ylabel, args.placement)
        if panels == 0:
            continue
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write(svg)
        made += 1
        print(f"{os.path.join(args.out, name)}: {panels} panel(s)")
    if made == 0:
        sys.exit(f"no {args.placement} latency or throughput rows in {args.json}")


if __name__ == "__main__":
    main()
