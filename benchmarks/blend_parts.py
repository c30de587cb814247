"""Issue 24: the default hybrid against its own parts and popularity, before and after a change
to its weight selection, per dataset, seed, protocol and k, from ``coldbrew bench`` reports.

``--before`` and ``--after`` are reports holding the hybrid (the parts may sit in either); the
parts are the bench's models that stand for the hybrid's (:data:`PARTS`). A cell is "below"
when the hybrid's mean is under the best part's (or popularity's) mean less that row's interval
half-width: the never-below-a-part rule of issue 24.

    PYTHONPATH=src python benchmarks/blend_parts.py --before base/*/results.json \\
        --after new/*/results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aim_table import CELLS, _cell

from coldbrew.bench.runner import ResultRow

PARTS = ("als", "als_f64", "attribute_map", "tfidf", "cf_map", "itemknn", "attribute_popularity")
"""The bench's models that stand for the hybrid's parts (its attribute popularity smooths with
1, the bench's with 0.1; its transitions part has no bench model)."""


Rows = dict[tuple[str, int], dict[tuple[str, str, int | None], ResultRow]]
"""Rows by (dataset, seed), then by (model, protocol, k)."""


def load(paths: list[Path]) -> Rows:
    """:data:`Rows` of the reports; a later report's row replaces an earlier one."""
    out: Rows = {}
    for path in paths:
        for raw in json.loads(path.read_text())["results"]:
            row = ResultRow.from_dict(raw)
            out.setdefault((row.dataset, row.seed), {})[(row.model, row.protocol, row.k)] = row
    return out


def _below(hybrid: ResultRow, other: ResultRow) -> bool:
    low, high = other.ndcg20_ci95
    return hybrid.metrics["ndcg@20"] < other.metrics["ndcg@20"] - (high - low) / 2


def table(before: Rows, after: Rows) -> str:
    lines = [
        "| dataset | seed | protocol | hybrid before | hybrid after | best part | popularity "
        "| after below a part? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (ds, seed), now in sorted(after.items()):
        old = before.get((ds, seed), {})
        rows = {**old, **now}
        for protocol, k in CELLS:
            new = now.get(("hybrid", protocol, k))
            parts = [rows[m, protocol, k] for m in PARTS if (m, protocol, k) in rows]
            if new is None or not parts:
                continue
            best = max(parts, key=lambda r: r.metrics["ndcg@20"])
            pop = rows.get(("popularity", protocol, k))
            was = old.get(("hybrid", protocol, k))
            below = [r.model for r in (best, pop) if r is not None and _below(new, r)]
            name = protocol if k is None else f"{protocol} k={k}"
            lines.append(
                f"| {ds} | {seed} | {name} | {_cell(was) if was else '–'} | {_cell(new)} "
                f"| {best.model} {_cell(best)} | {_cell(pop) if pop else '–'} "
                f"| {', '.join(below) or 'no'} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, nargs="+", required=True)
    parser.add_argument("--after", type=Path, nargs="+", required=True)
    args = parser.parse_args()
    print(table(load(args.before), load(args.after)))


if __name__ == "__main__":
    main()
