"""Score a fitted model on a split's test (or validation) part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from coldbrew.data.schema import ITEM_ID, USER_ID
from coldbrew.eval.metrics import METRICS, mean_metric
from coldbrew.eval.protocols import Split
from coldbrew.models.base import Recommender, UserQuery


@dataclass
class EvalResult:
    """Mean metrics plus the per-user values they came from (for bootstrap intervals)."""

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    users: list[str]


def relevant_by_user(frame: pd.DataFrame) -> dict[str, set[str]]:
    return {str(u): set(g[ITEM_ID]) for u, g in frame.groupby(USER_ID, sort=True)}


def evaluate_rankings(
    ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]], ks: Sequence[int] = (10, 20)
) -> dict[str, np.ndarray]:
    """Per-user arrays for every metric in :data:`METRICS` at every ``k``."""
    return {f"{name}@{k}": fn(ranked, relevant, k) for name, fn in METRICS.items() for k in ks}


def evaluate(
    model: Recommender,
    split: Split,
    *,
    part: str = "test",
    ks: Sequence[int] = (10, 20),
    batch_size: int = 256,
    show_progress: bool = False,
) -> EvalResult:
    """Rank for every user with interactions in ``part``; users are known (queried by id).

    Ranking excludes what the user has in train and, for the test part, in val. Candidates are
    the split's (``None``: every item).
    """
    target = getattr(split, part)
    relevant = relevant_by_user(target)
    users = sorted(relevant)
    known = relevant_by_user(split.train)
    if part == "test":
        for user, items in relevant_by_user(split.val).items():
            known.setdefault(user, set()).update(items)
    k_max = max(ks)
    ranked: list[list[str]] = []
    batches = range(0, len(users), batch_size)
    for start in tqdm(batches, desc=f"evaluate {type(model).__name__}", disable=not show_progress):
        chunk = users[start : start + batch_size]
        recs = model.recommend_batch(
            [UserQuery(user_id=u) for u in chunk],
            k_max,
            exclude=[known.get(u, set()) for u in chunk],
            candidates=split.candidates,
            exclude_seen=False,
        )
        ranked.extend(r.ids for r in recs)
    per_user = evaluate_rankings(ranked, [relevant[u] for u in users], ks)
    return EvalResult({name: mean_metric(v) for name, v in per_user.items()}, per_user, users)
