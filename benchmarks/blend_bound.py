"""How far could any weighting of the hybrid's parts go on a split's *test* queries? (issue 15)

Evidence for a shortfall, never a way to choose anything: it reads the test labels. The default
hybrid is fit on the bench's training split exactly as ``coldbrew bench`` fits it (inner
validation, weights), then the test queries are scored by each part alone, by the hybrid's own
weights, and by the weights that are best *on these test queries themselves*: one weight vector
over the grid (``--step``), and one per user bucket. No weighting of these parts' z-scores, however
it were chosen, beats that best one on this test set, so if it falls short of a target the
shortfall is not the fault of the weight search.

The measure is the protocol's headline: NDCG@20, or Recall@10 on the next-item protocol (its
test queries reveal the validation item, so they get the hybrid's revealing users' weights);
``--metric`` picks another.

``--extra-encoder`` adds the language-model parts (``lm``, ``cf_map``) a second time over another
encoder (a fine-tuned one) and takes the bound over both sets; the hybrid's own weights are then
not fit (their figure is the default hybrid's, in a run without the option).

    PYTHONPATH=src python benchmarks/blend_bound.py --dataset citeulike-a --cache-dir /work/cache \
        --out bound-citeulike-a.json
    PYTHONPATH=src:benchmarks python benchmarks/blend_bound.py --dataset ml-100k \
        --protocol next-item --step 0.1 --out bound-ml-100k-next-item.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from part_validation import default_hybrid

from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import BenchConfig, tasks_for
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.models.blend import Prepared, blend_ndcg, blend_recall
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.recipes import ModelContext, _attribute_map, _cf_map
from coldbrew.models.selection import ValTask
from coldbrew.models.weights import USER_EDGES, simplex_grid
from coldbrew.text.factory import make_encoder

Measure = Callable[[Prepared, np.ndarray], np.ndarray]
MEASURES: dict[str, Measure] = {
    "ndcg@20": lambda prep, weights: blend_ndcg(prep, weights, 20),
    "ndcg@10": lambda prep, weights: blend_ndcg(prep, weights, 10),
    "recall@10": lambda prep, weights: blend_recall(prep, weights, 10),
}
HEADLINE = {"next-item": "recall@10"}
"""Each protocol's headline measure where it is not NDCG@20 (``coldbrew bench``'s tables)."""


def figure(values: np.ndarray, metric: str = "ndcg@20") -> dict[str, Any]:
    """The mean and 95% interval, keyed by the measure's name without its ``@``."""
    low, high = bootstrap_ci(values)
    key = metric.replace("@", "")
    return {key: round(float(values.mean()), 4), "ci": [round(low, 4), round(high, 4)]}


def best_on(sub: Prepared, grid: np.ndarray, metric: str = "ndcg@20") -> tuple[np.ndarray, int]:
    """Per-query ``metric`` of the grid point (one weight per part of ``sub``, every bucket
    alike) with the best mean over ``sub``'s queries (the first such), and its index."""
    return best_of(MEASURES[metric](sub, grid))


def best_of(values: np.ndarray) -> tuple[np.ndarray, int]:
    """The row of ``(grid points, queries)`` ``values`` with the best mean (the first such),
    and its index."""
    best = int(np.argmax(values.mean(axis=1)))
    return values[best], best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument(
        "--protocol", default="cold-item", choices=["cold-item", "warm", "warm-latest", "next-item"]
    )
    ap.add_argument("--metric", default=None, choices=sorted(MEASURES), help="default: headline")
    ap.add_argument("--cache-dir", default=None, help="embedding cache of the default encoder")
    ap.add_argument("--split-dir", default="/tmp/part-validation-splits")
    ap.add_argument("--extra-encoder", default=None, help="a second encoder's lm and cf_map parts")
    ap.add_argument("--step", type=float, default=0.05)
    ap.add_argument("--parts", default="", help="search only these parts (default: all that speak)")
    ap.add_argument("--grid-out", default=None, help="also save every weighting's mean (.npz)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    metric = args.metric or HEADLINE.get(args.protocol, "ndcg@20")
    t0 = time.time()
    split, train, _, default = default_hybrid(
        args.dataset, args.protocol, args.cache_dir, args.split_dir
    )
    if args.extra_encoder:
        extra = make_encoder(args.extra_encoder)
        ectx = ModelContext(lambda: extra, None, 42)
        parts = {**default.parts, "lm_extra": _attribute_map(ectx), "cf_map_extra": _cf_map(ectx)}
        hybrid = HybridRecommender(parts, seed=42, tune=False)
    else:
        hybrid = default
    hybrid.fit(train)
    print(f"fit in {time.time() - t0:.0f}s", flush=True)
    (task,) = tasks_for(split, BenchConfig(protocols=(args.protocol,)))
    cell = 0 if args.protocol == "cold-item" else 1
    prep = hybrid.prepare(
        ValTask(cell, task.queries, task.exclude, task.relevant, task.candidates),
        (hybrid.item_counts > 0).astype(int),
    )
    rows = prep.n_relevant > 0
    asked = prep.take_queries(rows)
    names = list(hybrid.parts)
    report: dict[str, Any] = {
        "dataset": args.dataset,
        "protocol": args.protocol,
        "metric": metric,
        "extra_encoder": args.extra_encoder,
        "queries": int(rows.sum()),
        "parts": {},
    }
    n = len(names)
    for j, name in enumerate(names):
        alone = MEASURES[metric](asked.take_parts([j]), np.ones(1, dtype=np.float32))
        report["parts"][name] = figure(alone, metric)
        print(name, report["parts"][name], flush=True)
    if not args.extra_encoder:
        values = MEASURES[metric](asked, hybrid.weights)
        report["hybrid_weights"] = figure(values, metric)
        print("hybrid's own weights", report["hybrid_weights"], flush=True)
    # the bound: only parts that order this cell's candidates can move a blend
    speaking = [j for j in range(n) if not prep.flat[j] and not prep.silent[j]]
    if args.parts:
        wanted = args.parts.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise SystemExit(f"unknown parts {unknown}; the hybrid has {names}")
        speaking = [j for j in speaking if names[j] in wanted]
    grid = simplex_grid(len(speaking), args.step)
    print(f"searching {[names[j] for j in speaking]}: {len(grid)} weightings", flush=True)
    values = MEASURES[metric](asked.take_parts(speaking), grid)
    bound, best = best_of(values)
    if args.grid_out:  # every weighting's test mean, all and per user bucket (shape_bound.py)
        buckets, n_buckets = prep.buckets[rows], len(USER_EDGES)
        np.savez(
            args.grid_out,
            grid=grid,
            parts=np.array([names[j] for j in speaking]),
            means=values.mean(axis=1),
            bucket_sums=np.stack([values[:, buckets == b].sum(axis=1) for b in range(n_buckets)]),
            queries=len(buckets),
        )
    report["bound_one_weighting"] = {
        **figure(bound, metric),
        "weights": {names[j]: round(float(w), 3) for j, w in zip(speaking, grid[best])},
        "grid_points": len(grid),
    }
    print("best single weighting on test", report["bound_one_weighting"], flush=True)
    per_bucket = np.zeros(len(rows))
    chosen = {}
    for b in range(len(USER_EDGES)):
        in_b = rows & (prep.buckets == b)
        if in_b.any():
            values, at = best_on(prep.take_queries(in_b).take_parts(speaking), grid, metric)
            per_bucket[in_b] = values
            chosen[str(USER_EDGES[b])] = {
                names[j]: round(float(w), 3) for j, w in zip(speaking, grid[at])
            }
    report["bound_per_bucket"] = {**figure(per_bucket[rows], metric), "weights": chosen}
    print("best weighting per user bucket on test", report["bound_per_bucket"], flush=True)
    report["seconds"] = round(time.time() - t0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(stamped(report), indent=1))


if __name__ == "__main__":
    main()
