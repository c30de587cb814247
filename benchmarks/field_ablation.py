"""Which item fields carry a dataset's signal? Models rerun on one bench split with fields removed.

For one dataset and protocol (the bench's seed-42 split), each ``--drop`` set of item columns is
blanked in every item (the models see the same catalogue otherwise), and the chosen models are
fit on the split's training part and scored on its test part, NDCG@20 with 95% bootstrap
intervals, as ``coldbrew bench`` reports them. Evidence for reading results (issue 15: on
citeulike-a, how much of TF-IDF's lead comes from the user-written tags), not a way to choose
defaults: it reads the test split.

    PYTHONPATH=src python benchmarks/field_ablation.py --dataset citeulike-a --drop ,tags,abstract \
        --models tfidf,lightfm,zeroshot,cf_map,hybrid --cache-dir /tmp/ablation-cache \
        --out field-ablation-citeulike-a.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from coldbrew.bench.evaluate import evaluate
from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import BenchConfig, load_or_make_split
from coldbrew.data import load_dataset
from coldbrew.data.schema import Dataset
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.models.recipes import ModelContext, make_model, parse_models
from coldbrew.text.factory import make_encoder


def without(dataset: Dataset, fields: list[str]) -> Dataset:
    """``dataset`` with these item columns blanked (missing in every item)."""
    unknown = [f for f in fields if f not in dataset.items.columns]
    if unknown:
        raise ValueError(
            f"{dataset.name} items have no column {', '.join(map(repr, unknown))}; "
            f"they have {', '.join(dataset.items.columns)}"
        )
    return replace(dataset, items=dataset.items.assign(**{f: None for f in fields}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--protocol", default="cold-item", choices=["cold-item", "warm", "warm-latest"])
    ap.add_argument(
        "--drop",
        default=",tags",
        help="comma-separated field sets to blank, '+' inside a set ('' = none; default: ,tags)",
    )
    ap.add_argument("--models", default="tfidf,zeroshot,cf_map,hybrid")
    ap.add_argument("--cache-dir", default=None, help="embedding cache (texts change: its own)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dataset = load_dataset(args.dataset)
    config = BenchConfig(protocols=(args.protocol,))
    # the split depends on the interactions only: the same one for every field set
    split = load_or_make_split(dataset, args.protocol, config, None)
    encoder = make_encoder("default")
    ctx = ModelContext(lambda: encoder, args.cache_dir, 42)
    report: dict[str, Any] = {"dataset": args.dataset, "protocol": args.protocol, "rows": []}
    for spec in args.drop.split(","):
        fields = [f for f in spec.split("+") if f]
        train = split.train_dataset(without(dataset, fields))
        for name in parse_models(args.models):
            start = time.time()
            result = evaluate(make_model(name, ctx).fit(train), split)
            low, high = bootstrap_ci(result.per_user["ndcg@20"])
            row = {
                "dropped": fields,
                "model": name,
                "ndcg@20": round(result.metrics["ndcg@20"], 4),
                "ci": [round(low, 3), round(high, 3)],
                "users": len(result.users),
                "seconds": round(time.time() - start),
            }
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(stamped(report), indent=1))


if __name__ == "__main__":
    main()
