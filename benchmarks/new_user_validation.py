"""New users who revealed nothing, on the hybrid's inner validation only: plain popularity
against attribute popularity at several ``smoothing`` values.

The bench's cold-user split (seed 42) gives the training part; the hybrid's inner validation is
carved from it exactly as ``HybridRecommender.fit`` carves it
(:func:`~coldbrew.models.innerval.inner_validation`, seed 42, 10%), and its held-out users who
revealed nothing (k = 0) are asked for all their likes. Each model is fitted on the inner
training data; no test interaction is read. Per model: NDCG@20 on those queries and the paired
gains over plain popularity and over the hybrid's part (smoothing 1), each with its standard
error (the out-of-fold rule's yardstick).

    PYTHONPATH=src python benchmarks/new_user_validation.py --dataset ml-100k \\
        --out /tmp/new-user-validation
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from replay_stream import positives_in_order

from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import BenchConfig, load_or_make_split
from coldbrew.data import load_dataset
from coldbrew.data.schema import Dataset
from coldbrew.eval.metrics import ndcg_at_k_scores
from coldbrew.models.attrsmoothing import revealed_nothing
from coldbrew.models.base import Recommender
from coldbrew.models.baselines import AttributePopularityRecommender, PopularityRecommender
from coldbrew.models.innerval import inner_validation
from coldbrew.models.recipes import ATTRIBUTE_SMOOTHINGS
from coldbrew.models.selection import ValTask, always, keep_unless_beaten

SMOOTHING = ATTRIBUTE_SMOOTHINGS
HYBRID_SMOOTHING = 1.0
"""The hybrid's part's as built (``models/recipes.py``): since issue 24's k = 0 work the hybrid
chooses among :data:`SMOOTHING` per fit, out of fold against this one, as
:func:`smoothing_out_of_fold` does here."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--seed", type=int, default=42, help="the split's and the validation's")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON report")
    parser.add_argument(
        "--replay-history",
        action="store_true",
        help="carve the validation from the replay's history half (the first half of the "
        "positives in time order, what the replay's served hybrid is first fitted on) instead "
        "of the bench's cold-user training part",
    )
    return parser.parse_args(argv)


def new_user_task(tasks: list[ValTask]) -> ValTask:
    """The inner validation's task of held-out users who revealed nothing (the one the hybrid
    chooses its part's smoothing on: :func:`~coldbrew.models.attrsmoothing.revealed_nothing`)."""
    found = revealed_nothing(tasks)
    if not found:
        raise ValueError("the inner validation has no users who revealed nothing")
    return found[0]


def ndcg20(model: Recommender, task: ValTask) -> np.ndarray:
    """Each query's NDCG@20 under ``model`` (relevant items it does not know count as missed)."""
    scores = model.score(task.queries)
    relevant = np.zeros(scores.shape, dtype=bool)
    for q, rel in enumerate(task.relevant):
        relevant[q, model.item_ids.rows(rel, skip_unknown=True)] = True
    n_relevant = np.asarray([len(r) for r in task.relevant])
    return ndcg_at_k_scores(scores, relevant, n_relevant, 20)


def paired(values: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """The mean per-query gain of ``values`` over ``reference`` and its standard error."""
    gain = values - reference
    return float(gain.mean()), float(gain.std(ddof=1) / np.sqrt(len(gain)))


def smoothing_out_of_fold(
    values: dict[str, np.ndarray], part: np.ndarray, seed: int
) -> dict[str, Any]:
    """What a smoothing chosen per fit on these queries would be: the best mean among
    :data:`SMOOTHING`, kept over the part's only when it wins out of fold by more than its
    standard error (:func:`~coldbrew.models.selection.keep_unless_beaten`, the hybrid's rule)."""
    names = [f"attribute_popularity s={s:g}" for s in SMOOTHING]
    scores = np.vstack([values[n] for n in names])
    reference = SMOOTHING.index(HYBRID_SMOOTHING)

    def best(rows: np.ndarray) -> int:
        return int(np.argmax(rows.mean(axis=1)))

    row, gain, se = keep_unless_beaten(scores, best, always(reference), seed)
    return {"smoothing": SMOOTHING[row], "gain": gain, "gain_se": se}


def training_data(dataset: Dataset, args: argparse.Namespace) -> Dataset:
    """What the hybrid would be fitted on: the bench's cold-user training part, or with
    ``--replay-history`` the first half of the positives in time order."""
    if args.replay_history:
        frame = positives_in_order(dataset).drop(columns=["_order"])
        return dataset.with_interactions(frame.iloc[: len(frame) // 2])
    config = BenchConfig(protocols=("cold-user",), seed=args.seed)
    return load_or_make_split(dataset, "cold-user", config, None).train_dataset(dataset)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    dataset = load_dataset(args.dataset)
    train = training_data(dataset, args)
    inner, tasks = inner_validation(train, seed=args.seed)
    task = new_user_task(tasks)
    models: dict[str, Recommender] = {"popularity": PopularityRecommender(tie_break=False)}
    for s in SMOOTHING:
        models[f"attribute_popularity s={s:g}"] = AttributePopularityRecommender(
            smoothing=s, tie_break=False, min_users=5
        )
    values = {name: ndcg20(model.fit(inner), task) for name, model in models.items()}
    base, part = values["popularity"], values[f"attribute_popularity s={HYBRID_SMOOTHING:g}"]
    report: dict[str, Any] = {"dataset": args.dataset, "seed": args.seed, "queries": len(base)}
    report["fitted_on"] = "replay history half" if args.replay_history else "cold-user training"
    print(f"{args.dataset}: {len(base)} inner-validation users who revealed nothing")
    for name, v in values.items():
        gain, over_part = paired(v, base), paired(v, part)
        report[name] = {"ndcg@20": float(v.mean()), "gain": gain, "over_hybrid_part": over_part}
        print(
            f"  {name:28s} NDCG@20 {v.mean():.4f}  over popularity {gain[0]:+.4f} ± {gain[1]:.4f}"
            f"  over the hybrid's part {over_part[0]:+.4f} ± {over_part[1]:.4f}"
        )
    report["chosen_out_of_fold"] = smoothing_out_of_fold(values, part, args.seed)
    print(f"  a smoothing chosen per fit, out of fold against 1: {report['chosen_out_of_fold']}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        name = f"{args.dataset}-replay-history" if args.replay_history else args.dataset
        (args.out / f"{name}.json").write_text(json.dumps(stamped(report), indent=2) + "\n")


if __name__ == "__main__":
    main()
