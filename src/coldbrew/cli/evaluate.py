"""``coldbrew eval``: fit models on a protocol's training split and score its test split."""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coldbrew import __version__
from coldbrew.bench.evaluate import EvalResult, evaluate
from coldbrew.cli.common import (
    add_dataset_args,
    add_encoder_args,
    load_from_args,
    route_encoder,
    zero_shot_from_args,
)
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.eval.protocols import cold_item_split
from coldbrew.models.base import Recommender
from coldbrew.models.baselines import PopularityRecommender, RandomRecommender

MODELS: dict[str, Callable[[argparse.Namespace], Recommender]] = {
    "zeroshot": zero_shot_from_args,
    "popularity": lambda args: PopularityRecommender(),
    "random": lambda args: RandomRecommender(seed=args.seed),
}


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "eval",
        help="evaluate models on the cold-item protocol and write JSON",
        description="Fit each model on the cold-item training split (20% of items cold) and rank "
        "the cold test items for every test user. Prints a table and writes JSON.",
    )
    add_dataset_args(parser)
    add_encoder_args(parser)
    parser.add_argument(
        "--protocol", default="cold-item", choices=["cold-item"], help="evaluation protocol"
    )
    parser.add_argument(
        "--models",
        default="zeroshot,popularity,random",
        help=f"comma-separated: {', '.join(MODELS)} or saved model dirs (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=42, help="split seed (default: %(default)s)")
    parser.add_argument(
        "--out", type=Path, help="JSON file to write (default: runs/eval-<dataset>.json)"
    )
    parser.set_defaults(func=run)


def _make(name: str, args: argparse.Namespace) -> Recommender:
    if name in MODELS:
        return MODELS[name](args)
    if Path(name).is_dir():
        return Recommender.load(name)
    raise ValueError(
        f"unknown model {name!r}; use one of {', '.join(MODELS)} or a saved model directory"
    )


def run(args: argparse.Namespace) -> int:
    dataset = load_from_args(args)
    print(dataset.summary())
    if dataset.positives().empty:
        raise ValueError(
            f"{dataset.name} has no positive interactions to evaluate on (recommend and serve "
            "answer it from the item text alone)"
        )
    route_encoder(args, dataset)
    split = cold_item_split(dataset, seed=args.seed)
    train = split.train_dataset(dataset)
    print(
        f"cold-item split (seed {args.seed}): {split.info['cold_items']} cold items, "
        f"{split.info['test_users']} test users, {len(split.test):,} test interactions"
    )
    results: list[dict[str, Any]] = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        model = _make(name, args)
        start = time.perf_counter()
        if not (Path(name).is_dir() and model.is_fitted):
            model.fit(train)
        fit_s = time.perf_counter() - start
        result = evaluate(model, split, show_progress=True)
        results.append(
            {
                "model": name,
                "params": model.get_params(),
                "fit_seconds": fit_s,
                **result.metrics,
                "ci95": intervals(result, args.seed),
            }
        )
    _print_table(results)
    out = args.out or Path("runs") / f"eval-{dataset.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "dataset": dataset.name,
        "protocol": args.protocol,
        "seed": args.seed,
        "split": {k: v for k, v in split.info.items() if k != "cold_val_items"},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "coldbrew": __version__,
        "machine": f"{platform.machine()} python {platform.python_version()}",
        "results": results,
    }
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"wrote {out}")
    return 0


COLUMNS = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "precision@20", "hit_rate@20"]


def intervals(result: EvalResult, seed: int) -> dict[str, list[float]]:
    """The 95% bootstrap interval (over test users, as the bench computes it) of each column."""
    return {c: list(bootstrap_ci(result.per_user[c], seed=seed)) for c in COLUMNS}


def _cell(row: dict[str, Any], column: str) -> str:
    low, high = row["ci95"][column]
    return f"{row[column]:.4f} [{low:.3f},{high:.3f}]"


def _print_table(results: list[dict[str, Any]]) -> None:
    """Mean and [95% interval] of each metric, one model a row."""
    print(f"{'model':<14}" + "".join(f"{c:>22}" for c in COLUMNS) + f"{'fit s':>9}")
    for row in results:
        print(
            f"{row['model']:<14}"
            + "".join(f"{_cell(row, c):>22}" for c in COLUMNS)
            + f"{row['fit_seconds']:>9.1f}"
        )
    print("[low,high]: 95% bootstrap interval over the test users (1,000 resamples)")
