"""Issue 15's summary: the hybrid against the best baseline that is not coldbrew's, per dataset
and protocol, from ``coldbrew bench`` JSON reports (several reports of one dataset are merged:
a run per protocol, or a run and its ``--append``; they must share the split seed).

    .venv/bin/python benchmarks/aim_table.py benchmarks/results/*/results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from coldbrew.bench.runner import ResultRow

OURS = frozenset({"zeroshot", "attribute_map", "cf_map", "hybrid"})
"""coldbrew's own models; every other row is a baseline."""
CELLS = (
    ("cold-item", None),
    *(("cold-user", k) for k in (0, 1, 3, 5, 10, 20)),
    ("warm", None),
    ("warm-latest", None),
)


def load(paths: list[Path]) -> dict[str, list[ResultRow]]:
    """Rows by dataset; a later report's row replaces an earlier one of the same cell."""
    out: dict[str, dict[tuple[str, str, int | None], ResultRow]] = {}
    for path in paths:
        for raw in json.loads(path.read_text())["results"]:
            row = ResultRow.from_dict(raw)
            out.setdefault(row.dataset, {})[(row.model, row.protocol, row.k)] = row
    return {ds: list(rows.values()) for ds, rows in out.items()}


def _cell(row: ResultRow) -> str:
    low, high = row.ndcg20_ci95
    return f"{row.metrics['ndcg@20']:.4f} [{low:.3f}, {high:.3f}]"


def ratio_table(by_dataset: dict[str, list[ResultRow]]) -> str:
    lines = [
        "| dataset | protocol | hybrid NDCG@20 [95% CI] | best baseline | its NDCG@20 [95% CI] "
        "| hybrid ÷ baseline | intervals apart? |",
        "|---|---|---|---|---|---:|---|",
    ]
    for ds, rows in by_dataset.items():
        for protocol, k in CELLS:
            here = [r for r in rows if r.protocol == protocol and r.k == k]
            hybrid = next((r for r in here if r.model == "hybrid"), None)
            base = [r for r in here if r.model not in OURS]
            if hybrid is None or not base:
                continue
            best = max(base, key=lambda r: r.metrics["ndcg@20"])
            ratio = hybrid.metrics["ndcg@20"] / max(best.metrics["ndcg@20"], 1e-12)
            if hybrid.ndcg20_ci95[0] > best.ndcg20_ci95[1]:
                apart = "yes, above"
            elif hybrid.ndcg20_ci95[1] < best.ndcg20_ci95[0]:
                apart = "yes, below"
            else:
                apart = "no"
            label = protocol if k is None else f"{protocol} k={k}"
            lines.append(
                f"| {ds} | {label} | {_cell(hybrid)} | {best.model} | {_cell(best)} "
                f"| {ratio:.2f}× | {apart} |"
            )
    return "\n".join(lines)


def zero_shot_table(by_dataset: dict[str, list[ResultRow]]) -> str:
    """k = 0 (attributes only): the hybrid against the better of popularity and LightFM."""
    lines = [
        "| dataset | hybrid k=0 | popularity | LightFM | attribute popularity "
        "| hybrid ÷ max(popularity, LightFM) |",
        "|---|---|---|---|---|---:|",
    ]
    for ds, rows in by_dataset.items():
        at = {r.model: r for r in rows if r.protocol == "cold-user" and r.k == 0}
        if "hybrid" not in at or "popularity" not in at:
            continue
        rivals = [at[m] for m in ("popularity", "lightfm") if m in at]
        best = max(r.metrics["ndcg@20"] for r in rivals)
        cells = [_cell(at[m]) if m in at else "–" for m in ("lightfm", "attribute_popularity")]
        lines.append(
            f"| {ds} | {_cell(at['hybrid'])} | {_cell(at['popularity'])} | {cells[0]} "
            f"| {cells[1]} | {at['hybrid'].metrics['ndcg@20'] / best:.3f}× |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("reports", nargs="+", type=Path)
    args = parser.parse_args()
    by_dataset = load(args.reports)
    print(ratio_table(by_dataset))
    print()
    print(zero_shot_table(by_dataset))


if __name__ == "__main__":
    main()
