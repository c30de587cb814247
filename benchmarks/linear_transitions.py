"""What comes next, counted or regressed: ``linear_transitions``' settings chosen on the next-item
validation targets only, leave one dataset out.

For the bench's seed-42 next-item split of each dataset, the counts (``transitions``, the
hybrid's part) and ``linear_transitions`` at every ``--windows`` × ``--l2`` setting are fit on
the split's training part and asked each user's *validation* target (their second-latest like)
from the training history alone, the history masked, over the whole catalogue: Recall@10, as
the protocol's headline. No test target is read. ``--max-users`` draws that many users per
dataset (seed 0) where there are more.

Then, for each dataset held out in turn, the setting with the best geometric mean of Recall@10
÷ the counts' on the other datasets, and the held-out dataset's ratio for it and for the
shipped defaults::

    PYTHONPATH=src python benchmarks/linear_transitions.py \
        --datasets ml-100k,online-retail,ml-1m,ml-latest-small --out linear-transitions.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import BenchConfig, load_or_make_split
from coldbrew.data import load_dataset
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.eval.protocols import next_item_view
from coldbrew.models import Recommender, UserQuery
from coldbrew.models.sequence import LinearTransitionRecommender, TransitionRecommender

COUNTS = "counts"


def setting_name(window: int, l2: float) -> str:
    return f"window={window},l2={l2:g}"


def recall_at_10(model: Recommender, revealed: list[tuple[str, ...]], targets: list[str]) -> list:
    """1.0 where the target is in the model's top 10 for the revealed history (masked)."""
    hits = []
    for liked, target in zip(revealed, targets, strict=True):
        ids = model.recommend(UserQuery(liked=liked), k=10, exclude=set(liked)).ids
        hits.append(float(target in ids))
    return hits


def one_dataset(name: str, settings: list[tuple[int, float]], args: Any) -> dict[str, Any]:
    dataset = load_dataset(name)
    where = Path(args.split_dir) / name / "next-item-seed42"
    split = load_or_make_split(dataset, "next-item", BenchConfig(protocols=("next-item",)), where)
    train = split.train_dataset(dataset)
    view = next_item_view(split, part="val")
    users = view.users
    if args.max_users and len(users) > args.max_users:
        users = sorted(np.random.default_rng(0).choice(users, args.max_users, replace=False))
    revealed = [view.revealed[u] for u in users]
    targets = [view.target[u] for u in users]
    models: dict[str, Recommender] = {COUNTS: TransitionRecommender()}
    for window, l2 in settings:
        models[setting_name(window, l2)] = LinearTransitionRecommender(window=window, l2=l2)
    rows = {}
    for label, model in models.items():
        start = time.time()
        model.fit(train)
        fit_seconds = time.time() - start
        hits = recall_at_10(model, revealed, targets)
        low, high = bootstrap_ci(np.asarray(hits))
        rows[label] = {
            "recall10": float(np.mean(hits)),
            "ci": [low, high],
            "fit_seconds": fit_seconds,
            "learned_as": getattr(model, "learned_as", "counts"),
        }
        print(f"{name} {label}: {rows[label]['recall10']:.4f} ({fit_seconds:.1f} s)", flush=True)
    return {"users": len(users), "items": len(train.items), "settings": rows}


def leave_one_out(by_dataset: dict[str, Any], shipped: str) -> dict[str, Any]:
    """Per held-out dataset: the setting best on the others (geometric mean of the ratios to
    the counts) and the held-out ratio for it and for ``shipped``."""
    ratio = {
        d: {s: r["recall10"] / r0 for s, r in run["settings"].items() if s != COUNTS}
        for d, run in by_dataset.items()
        if (r0 := run["settings"][COUNTS]["recall10"]) > 0
    }
    out = {}
    for held in ratio:
        others = [d for d in ratio if d != held]
        if not others:
            continue
        score = {
            s: math.exp(sum(math.log(ratio[d][s]) for d in others) / len(others))
            for s in ratio[held]
        }
        chosen = max(score, key=lambda s: score[s])
        out[held] = {
            "chosen_on_others": chosen,
            "others_geomean": score[chosen],
            "held_out_ratio": ratio[held][chosen],
            "shipped_held_out_ratio": ratio[held].get(shipped, float("nan")),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", required=True, help="comma-separated")
    ap.add_argument("--windows", default="10,20,50")
    ap.add_argument("--l2", default="100,300,1000")
    ap.add_argument("--max-users", type=int, default=3000)
    ap.add_argument("--split-dir", default="/tmp/part-validation-splits")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    settings = [(int(w), float(x)) for w in args.windows.split(",") for x in args.l2.split(",")]
    defaults = LinearTransitionRecommender()
    shipped = setting_name(defaults.window, defaults.l2)
    by_dataset = {name: one_dataset(name, settings, args) for name in args.datasets.split(",")}
    report = {
        "protocol": "next-item",
        "part": "val",
        "metric": "recall@10",
        "shipped": shipped,
        "datasets": by_dataset,
        "leave_one_dataset_out": leave_one_out(by_dataset, shipped),
    }
    for held, row in report["leave_one_dataset_out"].items():
        print(
            f"held out {held}: chosen {row['chosen_on_others']} -> {row['held_out_ratio']:.3f}"
            f" (shipped {shipped}: {row['shipped_held_out_ratio']:.3f})"
        )
    Path(args.out).write_text(json.dumps(stamped(report), indent=1))


if __name__ == "__main__":
    main()
