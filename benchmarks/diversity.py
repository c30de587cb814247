"""The diversity and novelty controls' trade-off on the warm split (issue 26).

The default served model (what ``coldbrew recommend`` answers with: the hybrid, with the
encoder ``--encoder auto`` picks for the catalogue) is fit once on the training part of the warm
split ``coldbrew bench --protocol warm`` makes (seed 42, per-user 80/20), then every test user
(or a seeded sample of ``--max-users``) is ranked through ``Recommender.recommend_batch`` at
every (diversity, novelty) pair. For each pair: NDCG@20 with its 95% bootstrap interval,
catalogue coverage@20 (share of the catalogue in anyone's top 20), the list's mean popularity
(training positives per item, and the mean popularity percentile), and intra-list similarity
(mean cosine between the list's MiniLM item vectors).

    PYTHONPATH=src nice -n 19 python benchmarks/diversity.py --dataset ml-100k \
        --cache-dir /tmp/diversity-cache --out diversity-ml-100k.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.bench.evaluate import QuerySet, evaluate_rankings
from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import BenchConfig, prepare_protocol
from coldbrew.data import load_dataset
from coldbrew.data.schema import ITEM_ID
from coldbrew.eval.metrics import (
    bootstrap_ci,
    coverage_at_k,
    intra_list_similarity,
    mean_metric,
    popularity_percentile_at_k,
)
from coldbrew.live.refit import build_hybrid
from coldbrew.models.base import Recommender
from coldbrew.text.factory import make_encoder
from coldbrew.text.language import AUTO, catalogue_language, encoder_for

DIVERSITY = (0.0, 0.25, 0.5, 0.75, 1.0)
NOVELTY = (0.0, 0.25, 0.5, 1.0)
K = 20


def rank(model: Recommender, task: QuerySet, diversity: float, novelty: float) -> list[list[str]]:
    """The top ``K`` of every task user at one setting of the controls, in batches of 256."""
    ranked: list[list[str]] = []
    for start in range(0, len(task.users), 256):
        stop = start + 256
        recs = model.recommend_batch(
            task.queries[start:stop],
            K,
            exclude=task.exclude[start:stop],
            candidates=task.candidates,
            exclude_seen=False,
            diversity=diversity,
            novelty=novelty,
        )
        ranked.extend(r.ids for r in recs)
    return ranked


def list_similarity(model: Recommender, ids: list[str]) -> float:
    """Intra-list similarity of ``ids`` over the model's item text vectors."""
    vectors = model.text_vectors(model.item_ids.rows(ids))
    if vectors is None:
        raise ValueError(f"{model.kind} holds no item text vectors")
    return intra_list_similarity(vectors)


def measure(
    model: Recommender,
    task: QuerySet,
    ranked: list[list[str]],
    counts: dict[str, float],
    percentiles: dict[str, float],
) -> dict[str, Any]:
    """NDCG@20 and its interval, coverage@20, mean popularity, intra-list similarity."""
    ndcg = evaluate_rankings(ranked, task.relevant, (K,))[f"ndcg@{K}"]
    low, high = bootstrap_ci(ndcg)
    similarity = [list_similarity(model, ids) for ids in ranked]
    return {
        "ndcg@20": mean_metric(ndcg),
        "ndcg@20_ci95": (low, high),
        "coverage@20": coverage_at_k(ranked, len(percentiles), K),
        "popularity": float(np.mean([np.mean([counts.get(i, 0.0) for i in r]) for r in ranked])),
        "pop_percentile": mean_metric(popularity_percentile_at_k(ranked, percentiles, K)),
        "ils": float(np.nanmean(similarity)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--cache-dir", default="/tmp/diversity-cache")
    parser.add_argument("--max-users", type=int, help="a seeded sample of the test users")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()

    dataset = load_dataset(args.dataset)
    config = BenchConfig(protocols=("warm",), max_users=args.max_users, show_progress=False)
    prepared = prepare_protocol(dataset, "warm", config, None)
    task = prepared.tasks[0]
    positives = prepared.train.positives()[ITEM_ID].astype(str).value_counts()
    counts = {i: float(positives.get(i, 0)) for i in dataset.items[ITEM_ID].astype(str)}
    spec = encoder_for(AUTO, catalogue_language(dataset))
    model = build_hybrid(make_encoder(spec), cache_dir=args.cache_dir)
    start = time.perf_counter()
    model.fit(prepared.train)
    print(f"{dataset.summary()}; encoder {spec}; {len(task.users)} test users")
    print(f"model: {model.describe()}; fit {time.perf_counter() - start:.0f} s")
    print("| diversity | novelty | NDCG@20 [95% CI] | coverage@20 | mean popularity "
          "(positives / percentile) | intra-list similarity | seconds |")  # fmt: skip
    print("|---:|---:|---|---:|---:|---:|---:|")
    rows = []
    for novelty in NOVELTY:
        for diversity in DIVERSITY:
            start = time.perf_counter()
            ranked = rank(model, task, diversity, novelty)
            row = measure(model, task, ranked, counts, prepared.percentiles)
            row.update(diversity=diversity, novelty=novelty, seconds=time.perf_counter() - start)
            rows.append(row)
            low, high = row["ndcg@20_ci95"]
            print(
                f"| {diversity:g} | {novelty:g} | {row['ndcg@20']:.4f} [{low:.3f}, {high:.3f}] "
                f"| {row['coverage@20']:.3f} | {row['popularity']:.1f} / "
                f"{row['pop_percentile']:.3f} | {row['ils']:.3f} | {row['seconds']:.0f} |",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps(stamped({"rows": rows}), indent=2))


if __name__ == "__main__":
    main()
