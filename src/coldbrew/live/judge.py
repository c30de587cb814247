"""Judging a refit's candidate: the newest positive events the serving model has not seen are
held out, each asked as the live service would have been asked then, and the candidate is served
unless it ranks them worse than the serving model beyond the noise (:func:`should_serve`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from coldbrew.eval.metrics import ndcg_of_rank
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.store import Interaction, User

HOLDOUT = 500
"""At most this many of the newest unseen positive events judge a candidate."""


@dataclass
class Holdout:
    """Held-out events with the query the live service would have answered before each."""

    queries: list[UserQuery]
    targets: list[str]


def split_recent(
    positives: Sequence[Interaction], after: float, limit: int = HOLDOUT
) -> tuple[list[Interaction], list[Interaction]]:
    """(training events, held-out events): the newest events later than ``after``, at most
    ``limit`` of them and at most a fifth of all (the candidate learns from the rest)."""
    fresh = [n for n, i in enumerate(positives) if i.timestamp > after]
    keep = min(limit, len(positives) // 5)
    held = set(fresh[max(0, len(fresh) - keep) :]) if keep else set()
    train = [i for n, i in enumerate(positives) if n not in held]
    return train, [positives[n] for n in sorted(held)]


def holdout_queries(
    positives: Sequence[Interaction], held: Sequence[Interaction], users: Mapping[str, User]
) -> Holdout:
    """For each held-out event, the user's profile, their items liked before it and the
    event's context (what a request at that moment would have sent)."""
    held_ids = {i.interaction_id for i in held}
    history: dict[str, list[str]] = {}
    queries, targets = [], []
    for inter in positives:
        liked = history.setdefault(inter.user_id, [])
        if inter.interaction_id in held_ids:
            user = users.get(inter.user_id)
            queries.append(
                UserQuery(
                    user_id=inter.user_id,
                    text=user.text if user and user.text else None,
                    attributes=dict(user.attributes) if user else {},
                    liked=tuple(dict.fromkeys(liked)),
                    context=inter.context or {},
                )
            )
            targets.append(inter.item_id)
        liked.append(inter.item_id)
    return Holdout(queries, targets)


def judge(model: Recommender, holdout: Holdout, k: int = 20) -> np.ndarray:
    """NDCG@k of each held-out event's item (:func:`~coldbrew.eval.metrics.ndcg_of_rank`)."""
    ranks = []
    for start in range(0, len(holdout.queries), 64):
        queries = holdout.queries[start : start + 64]
        found = model.recommend_batch(
            queries, k, exclude=[q.liked for q in queries], exclude_seen=False
        )
        for recs, target in zip(found, holdout.targets[start : start + 64]):
            ranks.append(recs.ids.index(target) + 1 if target in recs.ids else 0)
    return ndcg_of_rank(np.asarray(ranks, dtype=np.int64), k)


def summary(gains: np.ndarray) -> dict[str, float]:
    """Events, mean NDCG@20 and hit@20 of a model's gains (NaN without events)."""
    if not len(gains):
        return {"events": 0, "ndcg20": math.nan, "hit20": math.nan}
    return {
        "events": len(gains),
        "ndcg20": float(gains.mean()),
        "hit20": float((gains > 0).mean()),
    }


def should_serve(candidate: np.ndarray, serving: np.ndarray, *, forced: bool) -> bool:
    """The rule: serve the candidate unless it ranks the held-out events worse than the
    serving model by more than one standard error of the paired difference of their NDCG@20
    (on a few dozen events a lower mean is as often noise as not, and the candidate has read
    the newer data). With no held-out events it is served; a refit forced by forget-user is
    always served."""
    if forced or not len(candidate):
        return True
    diff = candidate - serving
    se = diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else 0.0
    return bool(diff.mean() >= -se)
