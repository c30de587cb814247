"""Issue 24: the default hybrid against its own parts and popularity, per dataset, seed,
protocol and k, from ``coldbrew bench`` reports: a grid of every cell, or before and after a
change to its weight selection.

The parts are the bench's models that stand for the hybrid's (:data:`PARTS`). A cell is
"below" when the hybrid's mean is under the best part's (or popularity's) mean less that row's
interval half-width, on NDCG@20 or on any other metric the protocol gives an interval (next
item: Recall@10 and NDCG@10): the never-below-a-part rule of issue 24, one rule for every cell.
Rows are matched by dataset and split seed; a later report's row replaces an earlier one.

    PYTHONPATH=src python benchmarks/blend_parts.py grid runs/*/results.json --out grid.json
    PYTHONPATH=src python benchmarks/blend_parts.py compare --before base/*/results.json \\
        --after new/*/results.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aim_table import _cell

from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import ResultRow

PARTS = (
    "als",
    "als_f64",
    "attribute_map",
    "tfidf",
    "cf_map",
    "itemknn",
    "linear_transitions",
    "attribute_popularity",
    "popularity",
)
"""The bench's models that stand for the hybrid's parts (``cf``, ``cf_f64``, ``lm``,
``lexical``, ``cf_map``, ``itemknn``, ``transitions``, ``attribute_popularity``,
``popularity``; models/recipes.py). The bench's attribute popularity smooths with 0.1 where the
hybrid's smoothing is chosen per fit, and its popularity breaks ties by a hash. The order part
is ``linear_transitions`` since 2026-12-08 (the counts, ``transitions``, before)."""

GRID = (
    ("cold-item", None),
    *(("cold-user", k) for k in (0, 1, 3, 5, 10, 20)),
    ("warm", None),
    ("warm-latest", None),
    ("next-item", None),
)
"""Every cell of the bench, in the order the tables show them."""


@dataclass(frozen=True)
class Sourced:
    """A report's row and where it came from."""

    row: ResultRow
    report: str
    commit: str
    stale: bool = False
    """From a report whose hybrid predates a change that moves it (``--stale``)."""


Cell = tuple[str, str, int | None]
Rows = dict[tuple[str, int], dict[Cell, Sourced]]
"""Rows by (dataset, seed), then by (model, protocol, k)."""


def _commit(report: dict[str, Any]) -> str:
    """The commit a report records (its provenance block, or the bench's older ``source``)."""
    meta = report.get("meta", {})
    block = meta.get("provenance") or report.get("provenance") or {}
    commit = block.get("commit") or (meta.get("source") or {}).get("commit")
    return str(commit)[:7] if commit else "not recorded"


def load(
    paths: list[Path], parts_from: list[Path] | None = None, stale: list[Path] | None = None
) -> Rows:
    """:data:`Rows` of the reports; a later report's row replaces an earlier one. The reports
    in ``parts_from`` come first and give only rows of models other than the hybrid (parts
    measured on the same split by an earlier run whose hybrid is not today's); those in
    ``stale`` come next, their rows marked stale (the best there is, but not today's code)."""
    out: Rows = {}
    older, marked = list(parts_from or []), list(stale or [])
    for path in older + marked + paths:
        report = json.loads(path.read_text())
        commit = _commit(report)
        for raw in report["results"]:
            if path in older and raw["model"] == "hybrid":
                continue
            row = ResultRow.from_dict(raw)
            cell = (row.model, row.protocol, row.k)
            sourced = Sourced(row, str(path), commit, path in marked)
            out.setdefault((row.dataset, row.seed), {})[cell] = sourced
    return out


def metrics_of(row: ResultRow) -> dict[str, tuple[float, float, float]]:
    """Each metric with an interval: (mean, low, high); NDCG@20 always."""
    out = {"ndcg@20": (row.metrics["ndcg@20"], *row.ndcg20_ci95)}
    for name, (low, high) in row.intervals.items():
        if not (math.isnan(low) or math.isnan(high)):
            out[name] = (row.metrics[name], low, high)
    return out


def floor(mean: float, low: float, high: float) -> float:
    """The least a hybrid may score beside a row of ``mean`` and 95% interval ``[low, high]``:
    the mean less the interval's half-width (the never-below-a-part rule)."""
    return mean - (high - low) / 2


def below_on(hybrid: ResultRow, other: ResultRow) -> list[str]:
    """The metrics on which ``hybrid`` is under ``other``'s mean less its half-width."""
    mine = hybrid.metrics
    return [
        name
        for name, (mean, low, high) in metrics_of(other).items()
        if name in mine and mine[name] < floor(mean, low, high)
    ]


def _below(hybrid: ResultRow, other: ResultRow) -> bool:
    return bool(below_on(hybrid, other))


def weights_text(row: ResultRow) -> str:
    """The hybrid's chosen weights, each distinct set once with its test users."""
    users: dict[str, int] = {}
    for group in row.blend or []:
        text = " + ".join(f"{p} {w:g}" for p, w in sorted(group["weights"].items()))
        users[text] = users.get(text, 0) + int(group.get("test_users") or 0)
    ranked = sorted(users.items(), key=lambda item: -item[1])
    return "; ".join(f"{text} ({n})" for text, n in ranked) or "–"


def grid_cells(rows: Rows) -> list[dict[str, Any]]:
    """One dict per (dataset, seed, protocol, k) holding the hybrid and at least one part."""
    cells = []
    for (ds, seed), here in sorted(rows.items()):
        for protocol, k in GRID:
            hybrid = here.get(("hybrid", protocol, k))
            parts = [here[m, protocol, k] for m in PARTS if (m, protocol, k) in here]
            if hybrid is None or not parts:
                continue
            best = max(parts, key=lambda s: s.row.metrics["ndcg@20"])
            pop = here.get(("popularity", protocol, k))
            below = {
                s.row.model: below_on(hybrid.row, s.row)
                for s in parts
                if below_on(hybrid.row, s.row)
            }
            cells.append(
                {
                    "dataset": ds,
                    "seed": seed,
                    "protocol": protocol,
                    "k": k,
                    "hybrid": _metrics_dict(hybrid.row),
                    "best_part": best.row.model,
                    "best_part_metrics": _metrics_dict(best.row),
                    "popularity": _metrics_dict(pop.row) if pop else None,
                    "parts_measured": [s.row.model for s in parts],
                    "parts_missing": [m for m in PARTS if (m, protocol, k) not in here],
                    "below": below,
                    "weights": weights_text(hybrid.row),
                    "hybrid_report": hybrid.report,
                    "hybrid_commit": hybrid.commit,
                    "hybrid_stale": hybrid.stale,
                    "part_reports": sorted({s.report for s in parts}),
                    "part_commits": sorted({s.commit for s in parts}),
                }
            )
    return cells


def _metrics_dict(row: ResultRow) -> dict[str, list[float]]:
    return {name: list(v) for name, v in metrics_of(row).items()}


def _fmt(metrics: dict[str, list[float]] | None, name: str = "ndcg@20") -> str:
    if metrics is None or name not in metrics:
        return "–"
    mean, low, high = metrics[name]
    return f"{mean:.4f} [{low:.3f}, {high:.3f}]"


def grid_table(cells: list[dict[str, Any]], link_from: Path | None = None) -> str:
    """The grid as markdown: NDCG@20 (and next item's Recall@10) of the hybrid, its best part
    and popularity, the verdict, the hybrid's weights and its report and commit."""
    lines = [
        "| dataset | protocol | hybrid | best part | popularity | below a part? "
        "| hybrid's weights (test users) | report | commit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        name = c["protocol"] if c["k"] is None else f"{c['protocol']} k={c['k']}"
        hybrid, best = _fmt(c["hybrid"]), f"{c['best_part']} {_fmt(c['best_part_metrics'])}"
        pop = _fmt(c["popularity"])
        if "recall@10" in c["hybrid"]:
            hybrid += f"; R@10 {_fmt(c['hybrid'], 'recall@10')}"
            best += f"; R@10 {_fmt(c['best_part_metrics'], 'recall@10')}"
            pop += f"; R@10 {_fmt(c['popularity'], 'recall@10')}"
        verdict = "; ".join(f"**yes**: {m} ({', '.join(v)})" for m, v in c["below"].items())
        report = Path(c["hybrid_report"])
        if link_from is not None:
            report = Path(os.path.relpath(report, link_from))
        commits = {
            c["hybrid_commit"] + (" (stale)" if c["hybrid_stale"] else ""),
            *c["part_commits"],
        }
        lines.append(
            f"| {c['dataset']} | {name} | {hybrid} | {best} | {pop} | {verdict or 'no'} "
            f"| {c['weights']} | [{report.parent.name}]({report.parent}/) "
            f"| {', '.join(sorted(commits))} |"
        )
    return "\n".join(lines)


def table(before: Rows, after: Rows) -> str:
    """Before and after a change: the hybrid of each, its best part and popularity."""
    lines = [
        "| dataset | seed | protocol | hybrid before | hybrid after | best part | popularity "
        "| after below a part? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (ds, seed), now in sorted(after.items()):
        old = before.get((ds, seed), {})
        rows = {**old, **now}
        for protocol, k in GRID:
            new = now.get(("hybrid", protocol, k))
            parts = [rows[m, protocol, k].row for m in PARTS if (m, protocol, k) in rows]
            if new is None or not parts:
                continue
            best = max(parts, key=lambda r: r.metrics["ndcg@20"])
            pop = rows.get(("popularity", protocol, k))
            was = old.get(("hybrid", protocol, k))
            below = [r.model for r in (best, pop and pop.row) if r and _below(new.row, r)]
            name = protocol if k is None else f"{protocol} k={k}"
            lines.append(
                f"| {ds} | {seed} | {name} | {_cell(was.row) if was else '–'} | {_cell(new.row)} "
                f"| {best.model} {_cell(best)} | {_cell(pop.row) if pop else '–'} "
                f"| {', '.join(below) or 'no'} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    grid = sub.add_parser("grid", help="every cell of the reports: the hybrid against its parts")
    grid.add_argument("reports", type=Path, nargs="+")
    grid.add_argument(
        "--parts-from", type=Path, nargs="+", help="reports read for the parts only (no hybrid)"
    )
    grid.add_argument(
        "--stale", type=Path, nargs="+", help="reports whose hybrid predates a change moving it"
    )
    grid.add_argument("--out", type=Path, help="write the grid and its count here (JSON)")
    grid.add_argument("--links-from", type=Path, help="make report links relative to this folder")
    compare = sub.add_parser("compare", help="before and after a change to the selection")
    compare.add_argument("--before", type=Path, nargs="+", required=True)
    compare.add_argument("--after", type=Path, nargs="+", required=True)
    args = parser.parse_args()
    if args.command == "compare":
        print(table(load(args.before), load(args.after)))
        return
    cells = grid_cells(load(args.reports, args.parts_from, args.stale))
    below = [c for c in cells if c["below"]]
    stale = [c for c in cells if c["hybrid_stale"]]
    print(grid_table(cells, args.links_from))
    print(f"\ncells below a part or popularity beyond the interval: {len(below)} of {len(cells)}")
    print(f"cells whose hybrid is from a stale report: {len(stale)}")
    if args.out:
        summary = {
            "cells": len(cells),
            "below": len(below),
            "stale": len(stale),
            "current": len(cells) - len(stale),
            "below_current": sum(1 for c in below if not c["hybrid_stale"]),
            "parts": list(PARTS),
        }
        report = stamped({"summary": summary, "grid": cells})
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
