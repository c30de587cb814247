"""Ray encoding vs the plain path: texts/s on the same item texts, and identical vectors.

    OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ray_encode.py \
        --dataset ml-1m --n 2000 --workers 1,2 --out benchmarks/results/ray/encode-ml-1m.json

The first ``n`` item texts of a dataset, rendered as the models render them, are encoded by the
plain encoder in this process (torch's default threads) and then on a local Ray instance by 1 and
2 Ray Data actors of one CPU (one torch thread) each. Every Ray run must give the plain vectors
(max abs difference at most 1e-6) in the same order. A Ray run's wall time includes starting the
actors and loading the model in each; a run on ``--probe`` texts measures that fixed cost, and
``(n - probe) / (t_n - t_probe)`` is the steady rate the workers reach once started (the figure a
larger catalogue or a bigger cluster scales from). The 1-, 5- and 15-minute load averages are
recorded before and after each run (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.bench.provenance import stamped
from coldbrew.cluster import WorkerPlan, connect
from coldbrew.cluster.encode import encode_on_ray
from coldbrew.data import load_dataset
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import make_encoder
from coldbrew.text.templates import ItemTemplate

TOLERANCE = 1e-6
HEADER = (
    "| path | workers | torch threads | seconds | texts/s | steady texts/s | max abs diff "
    "| load before → after |\n|---|---|---|---|---|---|---|---|"
)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed_plain(
    encoder: Encoder, texts: list[str], threads: int
) -> tuple[np.ndarray, dict[str, Any]]:
    import torch

    torch.set_num_threads(threads)
    encoder.encode(texts[:8], kind="passage")  # load the model outside the timing
    before = load()
    start = time.perf_counter()
    vectors = encoder.encode(texts, kind="passage")
    seconds = time.perf_counter() - start
    row = {"path": "plain", "workers": None, "torch_threads": threads}
    row |= {"seconds": seconds, "texts_per_s": len(texts) / seconds}
    return vectors, row | {"load_before": before, "load_after": load()}


def timed_ray(
    encoder: Encoder, texts: list[str], workers: int, probe: int
) -> tuple[np.ndarray, dict[str, Any]]:
    plan = WorkerPlan(workers, 1)
    config, dim = encoder.config(), encoder.dim
    before = load()
    start = time.perf_counter()
    encode_on_ray(config, texts[:probe], dim=dim, plan=plan)
    probe_seconds = time.perf_counter() - start
    start = time.perf_counter()
    vectors = encode_on_ray(config, texts, dim=dim, plan=plan)
    seconds = time.perf_counter() - start
    # start-up is noisy on a loaded machine: no steady rate when it swamps the run
    work = seconds - probe_seconds
    steady = (len(texts) - probe) / work if seconds > 2 * probe_seconds else None
    row = {"path": "ray", "workers": workers, "torch_threads": 1, "seconds": seconds}
    row |= {"texts_per_s": len(texts) / seconds, "probe_seconds": probe_seconds}
    row |= {"steady_texts_per_s": steady, "steady_per_worker": steady and steady / workers}
    return vectors, row | {"load_before": before, "load_after": load()}


def compared(vectors: np.ndarray, plain: np.ndarray, label: str) -> dict[str, Any]:
    """How far ``vectors`` are from the reference; stops the run past the tolerance."""
    diff = float(np.abs(vectors - plain).max())
    if diff > TOLERANCE:
        raise SystemExit(f"{label}: vectors differ by {diff:.2e} > {TOLERANCE}")
    return {"max_abs_diff": diff, "bit_identical": bool(np.array_equal(vectors, plain))}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [HEADER]
    for r in rows:
        steady = f"{r['steady_texts_per_s']:.0f}" if r.get("steady_texts_per_s") else "—"
        lines.append(
            f"| {r['path']} | {r['workers'] or '—'} | {r['torch_threads']} | {r['seconds']:.1f} "
            f"| {r['texts_per_s']:.1f} | {steady} | {r['max_abs_diff']:.1e} "
            f"| {r['load_before'][0]} → {r['load_after'][0]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--n", type=int, default=2000, help="item texts to encode")
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to run")
    parser.add_argument(
        "--plain-threads", default="2,1", help="torch threads of the plain runs (first: reference)"
    )
    parser.add_argument("--probe", type=int, default=64, help="texts of the start-up probe")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()

    data = load_dataset(args.dataset)
    template = ItemTemplate(data.spec.item_text, data.spec.item_attributes)
    texts = template.render_frame(data.items.head(args.n))
    encoder = make_encoder(args.encoder)
    cores = os.cpu_count() or 1
    print(f"{args.dataset}: {len(texts)} texts, mean {np.mean([len(t) for t in texts]):.0f} chars")
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, load {load()}")
    rows: list[dict[str, Any]] = []
    plain = np.zeros(0)
    for threads in (int(t) for t in args.plain_threads.split(",")):
        vectors, row = timed_plain(encoder, texts, threads)
        plain = vectors if not rows else plain
        rows.append(row | compared(vectors, plain, f"plain, {threads} threads"))
    connect("local", num_cpus=cores)
    for workers in (int(w) for w in args.workers.split(",")):
        vectors, row = timed_ray(encoder, texts, workers, args.probe)
        rows.append(row | compared(vectors, plain, f"{workers} Ray workers"))
    print(table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"dataset": args.dataset, "n": len(texts), "encoder": encoder.name, "cores": cores}
        meta |= {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "probe": args.probe}
        args.out.write_text(json.dumps(stamped({"meta": meta, "rows": rows}), indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
