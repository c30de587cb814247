"""Cross-dataset NDCG@20 table from ``coldbrew bench`` JSON reports (for benchmarks/README.md).

.venv/bin/python benchmarks/summarize.py benchmarks/results/*.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = (
    ("cold-item", None),
    ("cold-user", 0),
    ("cold-user", 1),
    ("cold-user", 5),
    ("warm", None),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--metric", default="ndcg@20")
    args = parser.parse_args()
    for path in args.reports:
        report = json.loads(path.read_text())
        rows = report["results"]
        value = {(r["model"], r["protocol"], r["k"]): r["metrics"][args.metric] for r in rows}
        models = list(dict.fromkeys(r["model"] for r in rows))
        present = [c for c in COLUMNS if any((m, *c) in value for m in models)]
        labels = [p if k is None else f"{p} k={k}" for p, k in present]
        print(f"\n{report['meta']['dataset']} — {args.metric}\n")
        print("| model | " + " | ".join(labels) + " |")
        print("|---" * (len(labels) + 1) + "|")
        best = {c: max(value.get((m, *c), 0.0) for m in models) for c in present}
        for m in models:
            cells = []
            for c in present:
                v = value.get((m, *c))
                text = "–" if v is None else f"{v:.4f}"
                cells.append(f"**{text}**" if v is not None and v == best[c] else text)
            print(f"| {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
