"""Tables for benchmarks/README.md from ``coldbrew bench`` JSON reports.

    .venv/bin/python benchmarks/summarize.py benchmarks/results/*/results.json > tables.md

Prints, per report: the NDCG@20 overview (cold-item, cold-user at k = 0/1/5/20, warm), the full
cold-item and warm tables, and the cold-user NDCG@20 curve. The per-k cold-user tables stay in
each report's results.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from coldbrew.bench.report import curve_table, table
from coldbrew.bench.runner import ResultRow

OVERVIEW = (
    ("cold-item", None),
    ("cold-user", 0),
    ("cold-user", 1),
    ("cold-user", 5),
    ("cold-user", 20),
    ("warm", None),
)


def overview(rows: list[ResultRow], metric: str) -> str:
    value = {(r.model, r.protocol, r.k): r.metrics[metric] for r in rows}
    models = list(dict.fromkeys(r.model for r in rows))
    present = [c for c in OVERVIEW if any((m, *c) in value for m in models)]
    labels = [p if k is None else f"{p} k={k}" for p, k in present]
    lines = ["| model | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    best = {c: max(value.get((m, *c), 0.0) for m in models) for c in present}
    for m in models:
        cells = []
        for c in present:
            v = value.get((m, *c))
            text = "–" if v is None else f"{v:.4f}"
            cells.append(f"**{text}**" if v is not None and v == best[c] else text)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section(report: dict[str, Any], metric: str, plots: str) -> str:
    meta = report["meta"]
    rows = [ResultRow.from_dict(r) for r in report["results"]]
    name = meta["dataset"]
    load = meta["machine"].get("load_average_at_end")
    out = [
        f"### {name}",
        "",
        f"{meta['summary']}. Run {meta['date']}, seed {meta['seed']}, encoder "
        f"`{meta['encoder']}`, {meta['machine']['cpu_count']} cores"
        + (f", load average at the end {load}" if load else "")
        + ".",
        "",
        *[f"`{c}`" for c in meta.get("commands", [meta["command"]])],
        "",
        f"{metric} overview:",
        "",
        overview(rows, metric),
        "",
    ]
    for protocol in ("cold-item", "warm"):
        chosen = [r for r in rows if r.protocol == protocol]
        if chosen:
            out += [f"**{protocol}** ({chosen[0].users} test users):", "", table(chosen), ""]
    cold_user = [r for r in rows if r.protocol == "cold-user"]
    if cold_user:
        out += ["**cold-user**, NDCG@20 by revealed interactions k:", "", curve_table(cold_user)]
        out += ["", f"![cold-to-warm]({plots}/{name}/cold_to_warm.png)"]
        out += [f"![bars]({plots}/{name}/bars.png)", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--metric", default="ndcg@20")
    parser.add_argument("--plots", default="results", help="plot folder relative to the README")
    args = parser.parse_args()
    for path in args.reports:
        print(section(json.loads(path.read_text()), args.metric, args.plots))


if __name__ == "__main__":
    main()
