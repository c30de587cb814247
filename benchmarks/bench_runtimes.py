"""``coldbrew bench`` on each encoder runtime in turns, each run with an empty embedding cache.

    OPENBLAS_NUM_THREADS=1 nice -n 19 python benchmarks/bench_runtimes.py \
        --dataset online-retail --runtimes torch,auto --turns 2 \
        --out benchmarks/results/training/encoding-2x/bench-runtimes-online-retail.json

Each run is one ``coldbrew bench`` process (this checkout's code, ``--runtime`` set, a fresh
``--cache-dir``), so the catalogue is encoded in every run and the run's time includes it. The
runtimes take turns (torch, auto, torch, auto, ...), so both see the machine's load alike. The
report keeps, per run, the wall seconds, the CPU seconds of the bench process and its children
(user + sys), the load average before and after, and every row's NDCG@20 and encode rate; per
runtime, the median seconds; and, for the first two runtimes, their ratio (first ÷ second) and
whether every row's NDCG@20 agrees to 3 decimals (float onnx gives PyTorch's vectors to 2e-5).
A runtime's ONNX export is made before the first turn (untimed): with ``COLDBREW_CACHE`` set,
it is kept there, else under ``.coldbrew/cache/onnx``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from coldbrew.bench.provenance import stamped
from coldbrew.text.factory import runtime_encoder
from coldbrew.text.runtime import RUNTIMES


def cpu_seconds() -> float:
    """User + system seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(args: argparse.Namespace, runtime: str, work: Path) -> dict[str, Any]:
    """One timed ``coldbrew bench`` on ``runtime`` with an empty cache under ``work``."""
    out, cache = work / "out", work / "cache"
    command = [sys.executable, "-m", "coldbrew.cli.main", "bench", "--dataset", args.dataset,
               "--protocol", args.protocol, "--models", args.models, "--seed", str(args.seed),
               "--encoder", args.encoder, "--no-progress", "--cache-dir", str(cache),
               "--out", str(out), "--runtime", runtime]  # fmt: skip
    load_before, cpu_before, start = os.getloadavg(), cpu_seconds(), time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu_before
    results = json.loads((out / "results.json").read_text())
    rows = [
        {
            "model": r["model"],
            "protocol": r["protocol"],
            "k": r["k"],
            "ndcg@20": r["metrics"]["ndcg@20"],
            "encode_texts_per_s": r["encode_texts_per_s"],
            "fit_seconds": r["fit_seconds"],
        }
        for r in results["results"]
    ]
    return {
        "runtime": runtime,
        "wall_s": wall,
        "cpu_s": cpu,
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "rows": rows,
    }


def ndcg_rows(runs: list[dict[str, Any]], runtime: str) -> list[tuple[Any, ...]]:
    """Every distinct (model, protocol, k, NDCG@20 to 3 decimals) of ``runtime``'s runs."""
    found = {
        (row["model"], row["protocol"], row["k"], round(row["ndcg@20"], 3))
        for run in runs
        if run["runtime"] == runtime
        for row in run["rows"]
    }
    return sorted(found, key=str)


def summary(runs: list[dict[str, Any]], runtimes: list[str]) -> dict[str, Any]:
    """Median seconds per runtime; the first two runtimes' ratio and NDCG@20 agreement."""
    out: dict[str, Any] = {}
    for runtime in runtimes:
        mine = [r for r in runs if r["runtime"] == runtime]
        out[runtime] = {
            "runs": len(mine),
            "median_wall_s": statistics.median(r["wall_s"] for r in mine),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in mine),
        }
    if len(runtimes) >= 2:
        first, second = runtimes[:2]
        ndcg = {runtime: ndcg_rows(runs, runtime) for runtime in (first, second)}
        out["ratio"] = {
            "pair": f"{first} / {second}",
            "wall": out[first]["median_wall_s"] / out[second]["median_wall_s"],
            "cpu": out[first]["median_cpu_s"] / out[second]["median_cpu_s"],
        }
        out["ndcg@20_equal_to_3_decimals"] = ndcg[first] == ndcg[second]
        out["ndcg@20"] = {runtime: [list(v) for v in values] for runtime, values in ndcg.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--protocol", default="cold-item")
    parser.add_argument("--models", default="zeroshot")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--runtimes", default="torch,auto", help="comma-separated, in turn order")
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="the JSON report")
    args = parser.parse_args()
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown or args.turns < 1:
        parser.error(f"runtimes from {', '.join(RUNTIMES)} and --turns >= 1 (got {runtimes})")
    for runtime in runtimes:  # the ONNX export, made once, outside the timed runs
        runtime_encoder(args.encoder, runtime=runtime)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-runtimes-") as scratch:
        for turn in range(args.turns):
            for runtime in runtimes:
                run = one_run(args, runtime, Path(scratch) / f"{turn}-{runtime}")
                print(
                    f"turn {turn + 1} {runtime}: {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} "
                    f"CPU-s, load {run['load_average']['before'][0]:.2f}",
                    file=sys.stderr,
                )
                runs.append({"turn": turn + 1, **run})
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs}
    report["summary"] = summary(runs, runtimes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(stamped(report), indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
