"""Do revealing users' weights chosen on several next-item steps a user carry to other users'
latest likes better than weights chosen on the latest alone? On the inner validation only.

For the bench's seed-42 split of one dataset (next-item protocol), the default hybrid's parts
are fit on its inner training data with ``next_item_queries=--steps``: each time-ordered
returning user is asked for their latest few held-out likes, each with everything before it
revealed; their latest query is the one the default asks. Every query is scored once. Then, for
``--fold-seeds`` halvings of those users, the hybrid's own rule chooses the revealing users'
weights on one half's queries — the latest alone (the default), or every step (``--steps``) —
beside the held-out items' and new users' tasks of the same half, and both choices are scored on
the *other* half's latest queries (what the next-item protocol and a served returning user ask),
then the halves swap. No test interaction is read::

    PYTHONPATH=src:benchmarks python benchmarks/next_steps_validation.py --dataset ml-100k \
        --steps 3 --fold-seeds 10 --cache-dir /tmp/cache --out next-steps-ml-100k.json

The report holds, per halving, each choice's NDCG@20 and Recall@10 on the held-out latest
queries, and their paired differences' mean and standard error over the halvings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from next_item_validation import fitted_tasks, known_weights
from part_validation import default_hybrid

from coldbrew.bench.provenance import begin, stamped
from coldbrew.models.blend import Prepared, blend_ndcg, blend_recall
from coldbrew.models.hybrid import HybridRecommender


def latest_rows(prepared: Prepared, users: list[str], lengths: list[int]) -> np.ndarray:
    """Each user's latest step: the query that reveals the most."""
    best: dict[str, int] = {}
    for row, (user, n) in enumerate(zip(users, lengths, strict=True)):
        if user not in best or n > lengths[best[user]]:
            best[user] = row
    mask = np.zeros(len(prepared.n_relevant), dtype=bool)
    mask[list(best.values())] = True
    return mask


def choose_and_score(
    hybrid: HybridRecommender,
    others: list[tuple[int, Prepared]],
    other_halves: list[np.ndarray],
    steps: Prepared,
    step_half: np.ndarray,
    latest: np.ndarray,
    fold: int,
) -> dict[str, Any]:
    """Weights chosen on half ``fold``'s queries (latest only, or every step), scored on the
    other half's latest queries."""
    fit_others = [(c, p.take_queries(h == fold)) for (c, p), h in zip(others, other_halves)]
    held = steps.take_queries((step_half != fold) & latest)
    out: dict[str, Any] = {}
    for name, rows in (("latest", (step_half == fold) & latest), ("steps", step_half == fold)):
        fit = [*fit_others, (1, steps.take_queries(rows))]
        hybrid.fit_weights_prepared({c: [p for cell, p in fit if cell == c] for c in (0, 1)})
        out[name] = {
            "chosen_on": int(rows.sum()),
            "ndcg20": blend_ndcg(held, hybrid.weights),
            "recall10": blend_recall(held, hybrid.weights),
            "weights": known_weights(hybrid),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--fold-seeds", type=int, default=10)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--split-dir", default="/tmp/part-validation-splits")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    started, t0 = begin(), time.time()
    _, train, _, hybrid = default_hybrid(args.dataset, "next-item", args.cache_dir, args.split_dir)
    hybrid.next_item_queries = args.steps
    cells, returning, others = fitted_tasks(hybrid, train)
    nexts = returning[1]
    steps = hybrid.prepare(nexts, cells)
    users = [str(q.user_id) for q in nexts.queries]
    latest = latest_rows(steps, users, [len(q.liked) for q in nexts.queries])
    keep = steps.n_relevant > 0
    names = sorted(set(users))
    report: dict[str, Any] = {
        "dataset": args.dataset,
        "steps": args.steps,
        "users": len(names),
        "step_queries": int(keep.sum()),
        "latest_queries": int((keep & latest).sum()),
        "halvings": [],
    }
    for seed in range(args.fold_seeds):
        rng = np.random.default_rng(seed)
        half_of = dict(zip(names, rng.integers(0, 2, len(names)), strict=True))
        step_half = np.where(keep, [half_of[u] for u in users], -1)
        other_halves = [rng.integers(0, 2, len(p.n_relevant)) for _, p in others]
        per_fold = [
            choose_and_score(hybrid, others, other_halves, steps, step_half, latest, fold)
            for fold in (0, 1)
        ]
        halving: dict[str, Any] = {"seed": seed}
        for name in ("latest", "steps"):
            halving[name] = {
                metric: float(np.concatenate([f[name][metric] for f in per_fold]).mean())
                for metric in ("ndcg20", "recall10")
            }
            halving[name]["weights"] = [f[name]["weights"] for f in per_fold]
            halving[name]["chosen_on"] = [f[name]["chosen_on"] for f in per_fold]
        print(seed, {n: {m: round(halving[n][m], 4) for m in ("ndcg20", "recall10")}
                     for n in ("latest", "steps")}, flush=True)  # fmt: skip
        report["halvings"].append(halving)
    for metric in ("ndcg20", "recall10"):
        diff = np.array([h["steps"][metric] - h["latest"][metric] for h in report["halvings"]])
        report[f"{metric}_steps_minus_latest"] = {
            "mean": float(diff.mean()),
            "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None,
            "latest_mean": float(np.mean([h["latest"][metric] for h in report["halvings"]])),
            "steps_mean": float(np.mean([h["steps"][metric] for h in report["halvings"]])),
        }
    report["seconds"] = time.time() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(stamped(report, started), indent=1))
    print(json.dumps({k: v for k, v in report.items() if k.endswith("_latest")}, indent=1))


if __name__ == "__main__":
    main()
