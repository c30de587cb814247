"""Context-aware against context-blind on a time-ordered protocol (issue 26).

Online Retail's purchases each carry a country and a minute-resolution time; loaded with
``context=True`` every event keeps ``{"time", "location"}`` as its context. MovieLens ratings
carry a time only: there each event keeps ``{"time"}`` (``--dataset ml-100k``). Two protocols
keep the test events' context: **warm-latest** (each user's latest 20% of positives held out,
asked in the context of the earliest of them) and **cold-user** at ``k`` revealed positives
(asked in the context of the first one not revealed); ``--protocols next-item`` adds
leave-one-out by time (asked in the context of the one purchase to find). Each pair of models
is fitted on the same split's training part and scored on the same users: NDCG@20 with 95%
bootstrap intervals, and the paired ratio aware / blind with its own interval (users resampled
together).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src nice -n 19 .venv/bin/python benchmarks/context.py \\
        --pairs popularity:context_popularity,hybrid:hybrid_context --out /tmp/context
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.bench.evaluate import evaluate
from coldbrew.bench.provenance import stamped
from coldbrew.data.benchmarks import data_root, load_with_context
from coldbrew.data.schema import CONTEXT, Dataset
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.eval.protocols import Split, cold_user_split, latest_split, next_item_split
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.recipes import ModelContext, make_model
from coldbrew.text.factory import make_encoder

METRIC = "ndcg@20"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="online-retail", help="online-retail, ml-100k...")
    parser.add_argument("--data-root", default=None, help="benchmark data (default: as the CLI)")
    parser.add_argument(
        "--pairs", default="popularity:context_popularity", help="blind:aware model pairs"
    )
    parser.add_argument("--k-values", default="0,1", help="cold-user revealed purchases")
    parser.add_argument(
        "--protocols", default="warm-latest,cold-user", help="warm-latest, next-item, cold-user"
    )
    parser.add_argument("--encoder", default="default", help="for models that read text")
    parser.add_argument("--cache-dir", default=None, help="the embedding cache")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON report")
    parser.add_argument(
        "--shuffle-context",
        type=int,
        default=None,
        metavar="SEED",
        help="a control: each event keeps another event's context (shuffled with this seed)",
    )
    return parser.parse_args(argv)


def shuffled_context(dataset: Dataset, seed: int) -> Dataset:
    """``dataset`` with its events' contexts permuted among them: as many contexts, each as
    often, but no longer tied to what was bought (a control for what a model gains from the
    context itself rather than from having more rows to fit)."""
    inter = dataset.interactions
    contexts = inter[CONTEXT].to_numpy()[np.random.default_rng(seed).permutation(len(inter))]
    return dataset.with_interactions(inter.assign(**{CONTEXT: contexts}))


def paired_ratio(aware: np.ndarray, blind: np.ndarray, resamples: int, seed: int) -> list[float]:
    """mean(aware) / mean(blind) and its 95% percentile interval, users resampled together."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(aware), size=(resamples, len(aware)))
    ratios = aware[idx].mean(axis=1) / np.maximum(blind[idx].mean(axis=1), 1e-12)
    low, high = np.quantile(ratios, [0.025, 0.975])
    return [float(aware.mean() / max(blind.mean(), 1e-12)), float(low), float(high)]


def context_cells(model: Any) -> list[str]:
    """The hybrid's validation cells whose chosen weights give the context part a share."""
    validation = model.validation if isinstance(model, HybridRecommender) else {}
    return [
        cell
        for cell, entry in validation.items()
        if isinstance(entry, dict) and entry.get("weights", {}).get("context_popularity")
    ]


def context_weights(model: Any) -> dict[str, Any]:
    """What the hybrid's validation chose as each language-model part's context weight, with
    each candidate's NDCG@20 there and the out-of-fold gain over 0."""
    validation = model.validation if isinstance(model, HybridRecommender) else {}
    prefix = "context_weight/"
    return {k[len(prefix) :]: v for k, v in validation.items() if k.startswith(prefix)}


def score(
    pair: tuple[str, str],
    dataset: Dataset,
    split: Split,
    ks: list[int | None],
    ctx: ModelContext,
    resamples: int,
) -> list[dict[str, Any]]:
    """Fit both models of ``pair`` on ``split``'s training part; a row per (model, k)."""
    per: dict[str, list[np.ndarray]] = {}
    rows: list[dict[str, Any]] = []
    for name in pair:
        start = time.perf_counter()
        model = make_model(name, ctx).fit(split.train_dataset(dataset))
        fit = time.perf_counter() - start
        per[name] = []
        for k in ks:
            result = evaluate(model, split, k_shot=k)
            values = result.per_user[METRIC]
            per[name].append(values)
            low, high = bootstrap_ci(values, n_resamples=resamples)
            rows.append(
                {
                    "protocol": split.protocol,
                    "k": k,
                    "model": name,
                    "users": len(result.users),
                    METRIC: float(np.nanmean(values)),
                    "ci95": [low, high],
                    "fit_s": round(fit, 1),
                    "context_weighs_in": context_cells(model),
                    "context_weight": context_weights(model),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    for n, k in enumerate(ks):
        blind, aware = per[pair[0]][n], per[pair[1]][n]
        rows.append(
            {
                "protocol": split.protocol,
                "k": k,
                "model": f"{pair[1]} / {pair[0]}",
                "ratio": paired_ratio(aware, blind, resamples, 7),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    root = Path(args.data_root) if args.data_root else data_root()
    dataset = load_with_context(args.dataset, root)
    if args.shuffle_context is not None:
        dataset = shuffled_context(dataset, args.shuffle_context)
    print(dataset.summary(), flush=True)
    encoder = None

    def shared_encoder() -> Any:
        nonlocal encoder
        encoder = encoder or make_encoder(args.encoder)
        return encoder

    ctx = ModelContext(shared_encoder, args.cache_dir, args.seed)
    ks = [int(k) for k in args.k_values.split(",") if k.strip()]
    protocols = args.protocols.split(",")
    splits: list[tuple[Split, list[int | None]]] = []
    if "warm-latest" in protocols:
        splits.append((latest_split(dataset, seed=args.seed), [None]))
    if "next-item" in protocols:
        splits.append((next_item_split(dataset, seed=args.seed), [None]))
    if "cold-user" in protocols:
        splits.append((cold_user_split(dataset, k_values=tuple(ks), seed=args.seed), list(ks)))
    rows = []
    for pair_text in args.pairs.split(","):
        blind, aware = pair_text.split(":")
        for split, split_ks in splits:
            rows += score((blind, aware), dataset, split, split_ks, ctx, args.resamples)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        report = {
            "dataset": dataset.summary(),
            "seed": args.seed,
            "shuffle_context": args.shuffle_context,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": rows,
        }
        (args.out / "context.json").write_text(json.dumps(stamped(report), indent=2))


if __name__ == "__main__":
    main()
