"""Should a part join the hybrid? Its own weight search, with and without it, on the *inner
validation* only, cross-fitted.

For one dataset and protocol split (the bench's split, seed 42), the hybrid's inner validation is
carved from the split's training part exactly as ``HybridRecommender.fit`` does; the default
parts plus the candidates (``--add``, names from coldbrew.models.recipes; ``--drop`` tries the
default without some of its parts, ``--swap part=recipe`` with one replaced) are fit on the inner
training data and every validation query is scored once. Then, for each part set, the hybrid's
own rule (:meth:`HybridRecommender.fit_weights_prepared`: the 1-SE grid per item cell, user
bucket and known/new user) chooses weights on one half of the validation queries and is scored
(NDCG@20) on the other half, and the other way round. No test interaction is read.

    PYTHONPATH=src python benchmarks/part_validation.py --dataset ml-100k --protocol warm \
        --drop itemknn --cache-dir /work/cache --out part-ml-100k-warm.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import BenchConfig, load_or_make_split
from coldbrew.data import load_dataset
from coldbrew.data.schema import Dataset
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.eval.protocols import Split
from coldbrew.models.blend import Prepared, blend_ndcg
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.recipes import FACTORIES, ModelContext, make_model
from coldbrew.models.weights import REVEALING, USER_EDGES
from coldbrew.text.factory import make_encoder


def task_label(task: Any, prep: Prepared) -> str:
    if task.cell == 0:
        return "cold-item"
    if (prep.known == REVEALING).all():  # returning users asked for their next likes
        return "next-item"
    if prep.known.all():
        return "warm"
    return f"k={Counter(len(q.liked) for q in task.queries).most_common(1)[0][0]}"


def default_hybrid(
    name: str, protocol: str, cache_dir: str | None, split_dir: str
) -> tuple[Split, Dataset, ModelContext, HybridRecommender]:
    """The bench's seed-42 split of ``name`` (saved under ``split_dir``), its training data,
    the model context (the default encoder, ``cache_dir``) and an unfitted default hybrid."""
    dataset = load_dataset(name)
    config = BenchConfig(protocols=(protocol,))
    split = load_or_make_split(
        dataset, protocol, config, Path(split_dir) / name / f"{protocol}-seed42"
    )
    encoder = make_encoder("default")
    ctx = ModelContext(lambda: encoder, cache_dir, 42)
    default = make_model("hybrid", ctx)
    assert isinstance(default, HybridRecommender)
    return split, split.train_dataset(dataset), ctx, default


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--protocol", default="warm")
    ap.add_argument("--add", default="", help="comma-separated recipe names to try as parts")
    ap.add_argument("--drop", default="", help="comma-separated default parts to try without")
    ap.add_argument(
        "--swap", default="", help="comma-separated PART=RECIPE: the default with a part replaced"
    )
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--split-dir", default="/tmp/part-validation-splits")
    ap.add_argument("--fold-seed", type=int, default=0, help="how queries are cut in two")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    t0 = time.time()
    _, train, ctx, default = default_hybrid(
        args.dataset, args.protocol, args.cache_dir, args.split_dir
    )
    base = list(default.parts)
    added = [a for a in args.add.split(",") if a]
    swaps = dict(pair.split("=", 1) for pair in args.swap.split(",") if pair)
    parts = {**default.parts, **{a: FACTORIES[a](ctx) for a in [*added, *swaps.values()]}}
    hybrid = HybridRecommender(parts, seed=42)
    tasks = hybrid.fit_parts_for_validation(train)
    print(f"parts fit in {time.time() - t0:.0f}s", flush=True)
    cells = (hybrid.item_counts > 0).astype(int)
    rng = np.random.default_rng(args.fold_seed)
    preps, folds, labels = [], [], []
    for t in tasks:
        p = hybrid.prepare(t, cells)
        preps.append(p)
        folds.append(rng.integers(0, 2, len(t.queries)))
        labels.append(task_label(t, p))
    names = list(parts)
    dropped = [d for d in args.drop.split(",") if d]
    sets = {
        "default": base,
        **{f"default+{a}": [*base, a] for a in added},
        **{f"default-{d}": [b for b in base if b != d] for d in dropped},
        **{f"default:{o}->{n}": [n if b == o else b for b in base] for o, n in swaps.items()},
    }
    report: dict[str, Any] = {
        "dataset": args.dataset,
        "protocol": args.protocol,
        "edges": list(USER_EDGES),
        "queries": {lab: int((p.n_relevant > 0).sum()) for lab, p in zip(labels, preps)},
        "sets": {},
    }
    for set_name, members in sets.items():
        cols = [names.index(m) for m in members]
        per_label: dict[str, list[np.ndarray]] = {lab: [] for lab in labels}
        for fold in (0, 1):
            chooser = HybridRecommender({m: parts[m] for m in members}, seed=42)
            chooser.item_counts = hybrid.item_counts
            fit = [
                (t.cell, p.take_parts(cols).take_queries((f == fold) & (p.n_relevant > 0)))
                for t, p, f in zip(tasks, preps, folds)
            ]
            chooser.fit_weights_prepared({c: [p for cell, p in fit if cell == c] for c in (0, 1)})
            for lab, p, f in zip(labels, preps, folds):
                rows = (f != fold) & (p.n_relevant > 0)
                if rows.any():
                    sub = p.take_parts(cols).take_queries(rows)
                    per_label[lab].append(blend_ndcg(sub, chooser.weights))
        summary = {}
        for lab, values in per_label.items():
            flat = np.concatenate(values)
            low, high = bootstrap_ci(flat)
            summary[lab] = {"ndcg20": float(flat.mean()), "ci": [low, high], "n": len(flat)}
        report["sets"][set_name] = summary
        print(set_name, json.dumps({k: round(v["ndcg20"], 4) for k, v in summary.items()}))
    report["seconds"] = time.time() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(stamped(report), indent=1))


if __name__ == "__main__":
    main()
