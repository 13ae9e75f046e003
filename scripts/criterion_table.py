#!/usr/bin/env python3
"""Prints the criterion suites' latest results (`cargo bench -p zring-benches`) as one table: a row
per group and size, a column per implementation, and the ratios of zring to libzmq, to the bare
limit and to the best pure-Rust peer (zmq.rs, omq.rs, rzmq).

Latency rows are the median one-way time in microseconds (lower is better); streaming rows are the
median rate in messages per second (higher is better).

Usage:  python3 scripts/criterion_table.py [target/criterion] [--markdown]
"""

import json
import os
import sys

IMPS = ["zring", "libzmq", "bare", "zmq.rs", "omq.rs", "rzmq"]
PEERS = ["zmq.rs", "omq.rs", "rzmq"]
GROUPS = ("latency/", "pushpull/", "pubsub/")


def load(root):
    """{(group, parameter): {implementation: value}} from every benchmark's `new` estimates."""
    rows = {}
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json"), encoding="utf-8") as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json"), encoding="utf-8") as f:
            ns = json.load(f)["median"]["point_estimate"]
        if not bench["group_id"].startswith(GROUPS) or not bench["value_str"].isdigit():
            continue  # another crate's benchmark
        elements = (bench.get("throughput") or {}).get("Elements")
        value = elements / (ns * 1e-9) if elements else ns / 1000.0
        key = (bench["group_id"], int(bench["value_str"]))
        rows.setdefault(key, {})[bench["function_id"]] = value
    return rows


def cell(v, rate):
    if v is None:
        return ""
    if not rate:
        return f"{v:.2f} us"
    return f"{v / 1e6:.2f} M/s" if v >= 1e5 else f"{v / 1e3:.1f} k/s"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in sys.argv
    root = args[0] if args else "target/criterion"
    rows = load(root)
    if not rows:
        sys.exit(f"no criterion results under {root}")
    head = ["row"] + IMPS + ["zring/libzmq", "zring/bare", "zring/best peer"]
    lines = [head]
    for (group, param) in sorted(rows, key=lambda k: (k[0], k[1])):
        vals = rows[(group, param)]
        rate = not group.startswith("latency")
        z = vals.get("zring")
        ratio = lambda other: f"{z / other:.2f}" if z and other else ""
        peers = [vals[p] for p in PEERS if p in vals]
        best = (max(peers) if rate else min(peers)) if peers else None
        label = f"{group} {param}" + (" subs" if group.startswith("pubsub") else " B")
        lines.append([label] + [cell(vals.get(i), rate) for i in IMPS]
                     + [ratio(vals.get("libzmq")), ratio(vals.get("bare")), ratio(best)])
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for line in lines[1:]:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(l[i]) for l in lines) for i in range(len(head))]
        for line in lines:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths)))


if __name__ == "__main__":
    main()
