"""Encode throughput of two code trees in turns: the ratio of their items per CPU-second.

    python benchmarks/encode_ab.py --before /tmp/main --after . --dataset online-retail \
        --n 2000 --runtimes onnx,onnx-int8 --turns 2 --out ab-online-retail.json

Runs ``encode_throughput.py`` (this checkout's script) once per turn for each tree, the
``--before`` tree first, each in its own process with ``PYTHONPATH=TREE/src``, so a change to
how the encoders batch is measured on the same texts under the same load. The report keeps
every timed encoding of both trees and, per encoder, the median items per second and per
CPU-second of each and their ratio (after ÷ before); the per-CPU-second ratio is the figure to
read on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from coldbrew.bench.provenance import begin, stamped

SCRIPT = Path(__file__).resolve().parent / "encode_throughput.py"


def one_run(tree: str, args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    """The timed encodings of one ``encode_throughput.py`` process on ``tree``'s code."""
    command = [sys.executable, str(SCRIPT), "--dataset", args.dataset, "--n", str(args.n)]
    command += ["--runtimes", args.runtimes, "--encoders", "default", "--rounds", str(args.rounds)]
    command += ["--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve() / "src")}
    subprocess.run(command, env=env, check=True)
    rows: list[dict[str, Any]] = json.loads(out.read_text())["rounds"]
    return rows


def commit(tree: str) -> str:
    """The commit ``tree`` is checked out at (with ``+dirty`` when its files differ)."""
    git = ["git", "-C", tree]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD"], check=False).returncode != 0
    return head.stdout.strip() + ("+dirty" if dirty else "")


def summary(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per encoder: each tree's median figures and the ratio of after's to before's."""
    out: dict[str, Any] = {}
    for encoder in dict.fromkeys(row["encoder"] for row in rows["before"]):
        medians = {
            side: {
                key: statistics.median(r[key] for r in side_rows if r["encoder"] == encoder)
                for key in ("items_per_s", "items_per_cpu_s")
            }
            for side, side_rows in rows.items()
        }
        ratios = {
            key: round(medians["after"][key] / medians["before"][key], 3)
            for key in ("items_per_s", "items_per_cpu_s")
        }
        out[encoder.split(" ")[1].strip("()")] = {**medians, "ratio": ratios}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the tree measured first each turn")
    parser.add_argument("--after", required=True)
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--runtimes", default="onnx")
    parser.add_argument("--rounds", type=int, default=2, help="rounds in each process")
    parser.add_argument("--turns", type=int, default=1, help="processes of each tree")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    started = begin()
    rows: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as scratch:
        for turn in range(args.turns):
            for side in ("before", "after"):
                out = Path(scratch) / f"{side}-{turn}.json"
                rows[side] += one_run(getattr(args, side), args, out)
    trees = {
        side: {"path": getattr(args, side), "commit": commit(getattr(args, side))} for side in rows
    }
    report = {"dataset": args.dataset, "items": args.n, "trees": trees}
    report |= {"rounds": rows, "summary": summary(rows)}
    Path(args.out).write_text(json.dumps(stamped(report, started), indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
