"""Knowledge transfer across catalogues (issue 24 item 6): leave one dataset out, each in turn.

A linear map over whitened MiniLM vectors (:mod:`coldbrew.models.adaptor`) is trained on the
co-interactions of the other datasets' training parts (each catalogue whitened on its own items;
early stopping on their held-out warm items), then applied to the held-out catalogue, whitened on
its own item text, with no training on its interactions: they only name each test user's history,
as for zero-shot. Scored on the held-out dataset's cold items (the bench's seed-42 cold-item split,
NDCG@20 with 95% bootstrap intervals), beside zero-shot and whitening alone on the same split.

    PYTHONPATH=src python benchmarks/transfer.py --cache-root /tmp/ad --out transfer.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.bench.evaluate import evaluate
from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import BenchConfig, load_or_make_split
from coldbrew.data import BENCHMARKS, load_dataset
from coldbrew.data.schema import Dataset
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.eval.protocols import Split
from coldbrew.models.adapted import AdaptedZeroShotRecommender
from coldbrew.models.adaptor import MapSettings, train_map
from coldbrew.models.base import Recommender
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import make_encoder


def scored(model: Recommender, split: Split) -> dict[str, Any]:
    """NDCG@20 on the split's cold test items, with its interval and user count."""
    result = evaluate(model, split)
    low, high = bootstrap_ci(result.per_user["ndcg@20"])
    return {
        "ndcg@20": round(result.metrics["ndcg@20"], 4),
        "ci": [round(low, 3), round(high, 3)],
        "users": len(result.users),
    }


def held_out_row(
    name: str,
    parts: dict[str, tuple[Dataset, Split, AdaptedZeroShotRecommender]],
    encoder: Encoder,
    cache_root: str,
    settings: MapSettings,
) -> dict[str, Any]:
    """Zero-shot, whitened and transferred on ``name``, the map trained on the others."""
    train, split, whitened = parts[name]
    start = time.time()
    corpora = [model.corpus() for other, (_, _, model) in parts.items() if other != name]
    mapping, history = train_map(corpora, settings)
    transferred = AdaptedZeroShotRecommender(
        encoder, choices=("adapted",), mapping=mapping, cache_dir=f"{cache_root}/cache-{name}"
    ).fit(train)
    zeroshot = ZeroShotRecommender(encoder, cache_dir=f"{cache_root}/cache-{name}").fit(train)
    return {
        "held_out": name,
        "sources": [o for o in parts if o != name],
        "source_validation": [round(v, 4) for v in history],
        "best_epoch": int(np.argmax(history)) if history else 0,
        "zeroshot": scored(zeroshot, split),
        "whitened": scored(whitened, split),
        "transferred": scored(transferred, split),
        "seconds": round(time.time() - start),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(BENCHMARKS))
    ap.add_argument("--cache-root", required=True, help="holds cache-<dataset> embedding caches")
    ap.add_argument("--learning-rate", type=float, default=MapSettings.learning_rate)
    ap.add_argument("--penalty", type=float, default=MapSettings.penalty)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    settings = MapSettings(learning_rate=args.learning_rate, penalty=args.penalty)
    encoder = make_encoder("default")
    config = BenchConfig(protocols=("cold-item",))
    parts = {}
    for name in args.datasets.split(","):
        dataset = load_dataset(name)
        split = load_or_make_split(dataset, "cold-item", config, None)
        train = split.train_dataset(dataset)
        model = AdaptedZeroShotRecommender(
            encoder, choices=("whitened",), cache_dir=f"{args.cache_root}/cache-{name}"
        )
        parts[name] = (train, split, model.fit(train))
    rows = []
    for name in parts:
        rows.append(held_out_row(name, parts, encoder, args.cache_root, settings))
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    report = {"protocol": "cold-item", "seed": 42, "settings": vars(args), "rows": rows}
    Path(args.out).write_text(json.dumps(stamped(report), indent=1))


if __name__ == "__main__":
    main()
