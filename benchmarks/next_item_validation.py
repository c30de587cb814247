"""What the hybrid's inner validation says about its returning users' kinds of query, on the
inner validation only: a random draw of their likes (as the warm protocol asks), a run of their
latest likes from the history before it (as the warm-latest protocol asks), and their very
latest like with every earlier one revealed (as the next-item protocol and a served returning
user ask). The hybrid's validation asked the first two kinds until issue 24 item 3 (the opt-in
``hybrid_without_next_item`` still does); it now asks the third too, for the same users, and
chooses on those alone the weights of returning users who reveal likes (the mix ``next``).

For the bench's seed-42 split of one dataset and protocol, the default hybrid's parts are fit on
its inner training data (``HybridRecommender.fit_parts_for_validation``) and every query scored
once. Then the hybrid's own rule chooses weights on each mix of kinds (with the held-out items'
and new users' tasks), on one half of the queries, and is scored (NDCG@20) on the other half of
each kind, and the other way round. No test interaction is read.

    PYTHONPATH=src:benchmarks python benchmarks/next_item_validation.py --dataset online-retail \
        --protocol next-item --cache-dir /tmp/cache --out nextval-online-retail.json

``--rules pooled,every_shape,each_shape --mixes random+run --fold-seeds 5`` compares, on the
same cross-fittings, the returning users' search on the pooled queries (the default) with the
one that weighs each shape of query against its own best part
(``HybridRecommender(each_shape=True)``) and the one that vetoes a blend losing a shape
(``every_shape``), over five cross-fittings; ``parts`` in the report holds each part alone on
each kind of query, all its queries.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from part_validation import default_hybrid

from coldbrew.bench.provenance import stamped
from coldbrew.data.schema import Dataset
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.models.blend import Prepared, blend_ndcg
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.selection import ValTask
from coldbrew.models.weights import KNOWN, REVEALING, USER_KINDS

MIXES = {
    "random+run": ("random", "run"),
    "random+next": ("random", "next"),
    "random+run+next": ("random", "run", "next"),
    "next": ("next",),
}
"""The kinds each candidate validation chooses on: before, the third replacing the second, all,
and the next-item queries alone (weights of their own for the users who ask them)."""


def fitted_tasks(
    hybrid: HybridRecommender, train: Dataset
) -> tuple[np.ndarray, list[ValTask], list[tuple[int, Prepared]]]:
    """Fit ``hybrid``'s parts on its inner training data and return the item cells, the
    returning users' two tasks (their draws and runs, then their next items) and every other
    task, prepared."""
    tasks = hybrid.fit_parts_for_validation(train)
    cells = (hybrid.item_counts > 0).astype(int)
    first = next(iter(hybrid.parts.values()))  # holds the inner training histories
    returning = [t for t in tasks if t.cell == 1 and t.queries[0].user_id in first._history]
    assert len(returning) == 2, "the returning users' draws and runs, then their next items"
    others = [(t.cell, hybrid.prepare(t, cells)) for t in tasks if t not in returning]
    return cells, returning, others


def returning_kinds(warm: ValTask, nexts: ValTask) -> dict[str, ValTask]:
    """The returning users' tasks by kind of query: the random draws, the runs of latest likes
    (``warm``'s queries of the users ``nexts`` asks again) and the next-item queries."""
    again = {q.user_id for q in nexts.queries}
    kinds = {}
    for kind, keep in (("random", False), ("run", True)):
        rows = [i for i, q in enumerate(warm.queries) if (q.user_id in again) == keep]
        kinds[kind] = ValTask(
            1,
            [warm.queries[i] for i in rows],
            [warm.exclude[i] for i in rows],
            [warm.relevant[i] for i in rows],
            None,
        )
    return {**kinds, "next": nexts}


def parts_alone(hybrid: HybridRecommender, kinds: dict[str, Prepared]) -> dict[str, Any]:
    """Each part alone on each kind of query (NDCG@20 over all its queries)."""
    out: dict[str, Any] = {}
    for j, name in enumerate(hybrid.parts):
        one = np.zeros_like(hybrid.weights)
        one[..., j] = 1.0
        out[name] = {k: float(blend_ndcg(p, one).mean()) for k, p in kinds.items()}
    return out


def cross_fitted(
    hybrid: HybridRecommender,
    others: list[tuple[int, Prepared]],
    kinds: dict[str, Prepared],
    mixes: dict[str, tuple[str, ...]] = MIXES,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per mix: weights chosen on half the queries of every task (the held-out items' and new
    users' tasks always, the mix's returning kinds), NDCG@20 on the other half of each kind."""
    rng = np.random.default_rng(seed)
    folds = {k: rng.integers(0, 2, len(p.n_relevant)) for k, p in kinds.items()}
    other_folds = [rng.integers(0, 2, len(p.n_relevant)) for _, p in others]
    report = {}
    for mix, members in mixes.items():
        scored: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
        chosen = []
        for fold in (0, 1):
            fit = [(c, p.take_queries(f == fold)) for (c, p), f in zip(others, other_folds)]
            fit += [(1, kinds[k].take_queries(folds[k] == fold)) for k in members]
            hybrid.fit_weights_prepared({c: [p for cell, p in fit if cell == c] for c in (0, 1)})
            chosen.append(known_weights(hybrid))
            for k, p in kinds.items():
                scored[k].append(blend_ndcg(p.take_queries(folds[k] != fold), hybrid.weights))
        report[mix] = {"weights": chosen}
        for k, values in scored.items():
            flat = np.concatenate(values)
            low, high = bootstrap_ci(flat)
            report[mix][k] = {"ndcg20": float(flat.mean()), "ci": [low, high], "n": len(flat)}
        print(mix, {k: round(report[mix][k]["ndcg20"], 4) for k in kinds}, flush=True)
    return report


def known_weights(hybrid: HybridRecommender) -> dict[str, dict[str, float]]:
    """The returning users' weights on items with interactions, per bucket and kind (asking
    from their training history, revealing likes beyond it)."""
    out = {}
    for kind in (KNOWN, REVEALING):
        for b, row in enumerate(hybrid.weights[:, 1, kind]):
            shares = {p: round(float(w), 2) for p, w in zip(hybrid.parts, row) if w > 0}
            out[f"{USER_KINDS[kind]}/bucket{b}"] = shares
    return out


def summary(report: dict[str, Any], mix: str = "random+run") -> dict[str, Any]:
    """Per rule, over its cross-fittings: each kind's mean NDCG@20 and its ratio to the best
    part alone on that kind (all its queries), and the smaller of the random and run ratios."""
    parts = report["parts"]
    best = {k: max(parts, key=lambda p: parts[p][k]) for k in ("random", "run")}
    out: dict[str, Any] = {"best_part": {k: [p, parts[p][k]] for k, p in best.items()}}
    for key, mixes in report.items():
        if not key.startswith("mixes") or mix not in mixes:
            continue
        rule = key.split("_seed")[0].removeprefix("mixes").removeprefix("_") or "pooled"
        row = out.setdefault(rule, {"random": [], "run": []})
        for kind in ("random", "run"):
            row[kind].append(mixes[mix][kind]["ndcg20"] / parts[best[kind]][kind])
    for rule, row in out.items():
        if rule != "best_part":
            ratios = {k: float(np.mean(v)) for k, v in row.items()}
            out[rule] = {**ratios, "worse": min(ratios.values()), "fittings": len(row["run"])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--protocol", default="next-item")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--split-dir", default="/tmp/part-validation-splits")
    ap.add_argument("--rules", default="pooled", help="of pooled,every_shape,each_shape")
    ap.add_argument("--mixes", default=",".join(MIXES), help="which mixes to choose on")
    ap.add_argument("--fold-seeds", type=int, default=1, help="cross-fit with seeds 0..N-1")
    ap.add_argument("--summarize", action="store_true", help="print --out's rules' summary")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.summarize:
        print(json.dumps(summary(json.loads(Path(args.out).read_text())), indent=1))
        return
    t0 = time.time()
    _, train, _, hybrid = default_hybrid(
        args.dataset, args.protocol, args.cache_dir, args.split_dir
    )
    # the latest like alone, one next-item query a user: the default's validation from issue 24
    # item 3 until NEXT_ITEM_STEPS (this script's kinds read one such query a user)
    hybrid.next_item_queries = True
    cells, returning, others = fitted_tasks(hybrid, train)
    kinds = {k: hybrid.prepare(t, cells) for k, t in returning_kinds(*returning).items()}
    kinds = {k: p.take_queries(p.n_relevant > 0) for k, p in kinds.items()}
    # each query's shape, as the hybrid's own validation marks it: runs of latest likes
    kinds["run"] = dataclasses.replace(kinds["run"], latest=np.ones(len(kinds["run"].latest), bool))
    report: dict[str, Any] = {"dataset": args.dataset, "protocol": args.protocol}
    report["parts"] = parts_alone(hybrid, kinds)
    mixes = {m: MIXES[m] for m in args.mixes.split(",")}
    for seed in range(args.fold_seeds):
        for rule in args.rules.split(","):
            hybrid.each_shape, hybrid.every_shape = rule == "each_shape", rule == "every_shape"
            key = "mixes" if rule == "pooled" else f"mixes_{rule}"
            key += f"_seed{seed}" if seed else ""
            report[key] = cross_fitted(hybrid, others, kinds, mixes, seed)
    report["seconds"] = time.time() - t0
    Path(args.out).write_text(json.dumps(stamped(report), indent=1))


if __name__ == "__main__":
    main()
