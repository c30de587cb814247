"""Compare ways of blending the hybrid's parts on its *inner validation* only (issue 15).

For one dataset and protocol split (the bench's saved split, seed 42), the hybrid's inner
validation is carved from the split's training part exactly as ``HybridRecommender.fit`` does;
the parts (plus variants: other ridge penalties of ``cf_map``, ``cf_map`` with TF-IDF features)
are fit on the inner training data, and every fusion rule is scored by two-fold cross-fitting
over the validation queries (weights chosen on one half, NDCG@20 measured on the other, and the
other way round), so a rule that overfits the validation is not rewarded. No test interaction
is read.

    PYTHONPATH=src python benchmarks/fusion_validation.py --dataset ml-100k \
        --cache-dir /work/cache --split-dir runs/bench-ml-100k/splits --out fusion-ml-100k.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import BenchConfig, load_or_make_split
from coldbrew.data import load_dataset
from coldbrew.eval.metrics import ndcg_at_k_scores
from coldbrew.models.base import Recommender
from coldbrew.models.baselines import AttributePopularityRecommender
from coldbrew.models.blend import K, Prepared, blend_ndcg
from coldbrew.models.heads import CFMapRecommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.recipes import FACTORIES, ModelContext, _als, _attribute_map
from coldbrew.models.tfidf import TfidfRecommender
from coldbrew.models.weights import USER_EDGES, one_standard_error_choice, simplex_grid
from coldbrew.text.factory import make_encoder


@dataclass(frozen=True)
class Task:
    """One validation task scored by the hybrid, its item cell and each query's fold."""

    prep: Prepared
    cell: int
    fold: np.ndarray

    def cut(self, rows: np.ndarray, cols: list[int]) -> Prepared:
        """The chosen query rows and part columns."""
        return self.prep.take_parts(cols).take_queries(rows)


def build_parts(
    ctx: ModelContext, alphas: list[float], lexical: list[float], dims: list[int]
) -> dict[str, Any]:
    parts: dict[str, Recommender] = {
        "cf": FACTORIES["als"](ctx),
        "cf_f64": _als(ctx),
        "lm": _attribute_map(ctx),
        "lexical": TfidfRecommender(),
        "popularity": AttributePopularityRecommender(tie_break=False),
    }
    enc = ctx.encoder()
    for a in alphas:
        parts[f"cf_map_a{a:g}"] = CFMapRecommender(enc, _als(ctx), alpha=a, cache_dir=ctx.cache_dir)
    for d in dims:
        for a in lexical:
            parts[f"cf_maplex{d}_a{a:g}"] = CFMapRecommender(
                enc, _als(ctx), alpha=a, lexical_dims=d, cache_dir=ctx.cache_dir
            )
    return parts


def rrf_ndcg(prep: Prepared, k: float = 60.0) -> np.ndarray:
    """NDCG@20 of reciprocal rank fusion of ``prep``'s parts (ranks, not scores, summed)."""
    total = np.zeros(prep.pad.shape)
    for part in prep.parts:
        s = np.where(prep.pad, -np.inf, part)
        ranks = np.argsort(np.argsort(-s, axis=1), axis=1)
        total += 1.0 / (k + ranks + 1)
    total = total + prep.ties
    total[prep.pad] = -np.inf
    return ndcg_at_k_scores(total, prep.relevant, prep.n_relevant, K)


def grid_rule(step: float, rule: str) -> Callable[..., np.ndarray]:
    def choose(tasks: list[Task], rows: list[np.ndarray], cols: list[int]) -> np.ndarray:
        grid = simplex_grid(len(cols), step)
        ndcg = np.concatenate(
            [blend_ndcg(t.cut(r, cols), grid) for t, r in zip(tasks, rows)], axis=1
        )
        best = (
            one_standard_error_choice(ndcg, grid)
            if rule == "1se"
            else int(np.argmax(ndcg.mean(axis=1)))
        )
        return grid[best]

    return choose


def logistic_rule(tasks: list[Task], rows: list[np.ndarray], cols: list[int]) -> np.ndarray:
    """Linear weights from a logistic regression of 'relevant' on the parts' z-scores over
    every (query, candidate) pair; weights may be negative."""
    from sklearn.linear_model import LogisticRegression

    xs, ys = [], []
    for t, r in zip(tasks, rows):
        p = t.cut(r, cols)
        keep = ~p.pad
        xs.append(np.stack([part[keep] for part in p.parts], axis=1))
        ys.append(p.relevant[keep])
    x, y = np.concatenate(xs), np.concatenate(ys)
    model = LogisticRegression(C=1.0, max_iter=500, class_weight="balanced").fit(x, y)
    return np.asarray(model.coef_[0])


def evaluate(
    tasks: list[Task], select: Callable[[Prepared], np.ndarray], cols: list[int], how: Any
) -> tuple[float, int]:
    """Two-fold cross-fitted mean NDCG@20 over the selected queries of ``tasks``."""
    scores = []
    for fold in (0, 1):
        fit_rows, test_rows = [], []
        for t in tasks:
            chosen = select(t.prep)
            fit_rows.append(chosen & (t.fold == fold))
            test_rows.append(chosen & (t.fold != fold))
        if how == "rrf":
            for t, r in zip(tasks, test_rows):
                if r.any():
                    scores.append(rrf_ndcg(t.cut(r, cols)))
            continue
        if not any(r.any() for r in fit_rows):
            continue
        w = how(tasks, fit_rows, cols)
        for t, r in zip(tasks, test_rows):
            if r.any():
                scores.append(blend_ndcg(t.cut(r, cols), w))
    flat = np.concatenate(scores) if scores else np.zeros(0)
    return (float(flat.mean()) if len(flat) else float("nan")), len(flat)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--protocol", default="cold-item")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--split-dir", required=True)
    ap.add_argument("--alphas", default="1,3,10,30,100")
    ap.add_argument("--lexical-alphas", default="3,10,30")
    ap.add_argument("--lexical-dims", default="128")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    t0 = time.time()
    dataset = load_dataset(args.dataset)
    config = BenchConfig(protocols=(args.protocol,))
    split_dir = Path(args.split_dir) / f"{args.protocol}-seed42"
    split = load_or_make_split(dataset, args.protocol, config, split_dir)
    train = split.train_dataset(dataset)
    encoder = make_encoder("default")
    ctx = ModelContext(lambda: encoder, args.cache_dir, 42)
    alphas = [float(a) for a in args.alphas.split(",") if a]
    lex = [float(a) for a in args.lexical_alphas.split(",") if a]
    hybrid = HybridRecommender(
        build_parts(ctx, alphas, lex, [int(d) for d in args.lexical_dims.split(",") if d]), seed=42
    )
    tasks = hybrid.fit_parts_for_validation(train)
    print(f"parts fit {time.time() - t0:.0f}s", flush=True)
    cells = (hybrid.item_counts > 0).astype(int)
    rng = np.random.default_rng(0)
    scored = [
        Task(hybrid.prepare(t, cells), t.cell, rng.integers(0, 2, len(t.queries))) for t in tasks
    ]
    names = list(hybrid.parts)
    col = {n: i for i, n in enumerate(names)}
    report: dict[str, Any] = {"dataset": args.dataset, "protocol": args.protocol, "rows": []}

    def run(
        label: str,
        chosen: list[Task],
        sel: Callable[[Prepared], np.ndarray],
        sets: dict[str, list[str]],
    ) -> None:
        for set_name, members in sets.items():
            cols = [col[m] for m in members]
            for how_name, how in [
                ("single/1se_0.2", grid_rule(0.2, "1se")),
                ("grid0.1_1se", grid_rule(0.1, "1se")),
                ("grid0.1_best", grid_rule(0.1, "best")),
                ("logistic", logistic_rule),
                ("rrf", "rrf"),
            ]:
                if len(cols) == 1 and how_name != "single/1se_0.2":
                    continue
                value, n = evaluate(chosen, sel, cols, how)
                row = {"group": label, "parts": set_name, "rule": how_name, "ndcg20": value, "n": n}
                report["rows"].append(row)
                print(json.dumps(row), flush=True)

    cold = [t for t in scored if t.cell == 0]
    if cold:

        def everyone(p: Prepared) -> np.ndarray:
            return p.n_relevant > 0

        maps = [n for n in names if n.startswith("cf_map")]
        sets = {n: [n] for n in ["lm", "lexical", *maps]}
        for m in maps:
            sets[f"lm+lexical+{m}"] = ["lm", "lexical", m]
        if "cf_map_a10" in names:
            sets["lexical+cf_map_a10"] = ["lexical", "cf_map_a10"]
        run("cold-item", cold, everyone, sets)
    # k = 0 users (new, nothing revealed): which blend of the non-CF parts
    k0_sets = {
        "popularity": ["popularity"],
        "lm": ["lm"],
        "popularity+lm": ["popularity", "lm"],
    }

    def k0(p: Prepared) -> np.ndarray:
        return (p.n_relevant > 0) & (p.buckets == 0) & (p.known == 0)

    run("k=0", [t for t in scored if t.cell == 1], k0, k0_sets)
    report["edges"] = list(USER_EDGES)
    report["seconds"] = time.time() - t0
    Path(args.out).write_text(json.dumps(stamped(report), indent=1))


if __name__ == "__main__":
    main()
