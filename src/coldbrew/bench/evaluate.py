"""Score a fitted model on a split's test (or validation) part."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from coldbrew.data.frames import pd
from coldbrew.data.schema import ITEM_ID, USER_ID, context_at, next_contexts
from coldbrew.eval.metrics import METRICS, mean_metric
from coldbrew.eval.protocols import PARTS, Split, k_shot, next_item_view
from coldbrew.models.base import Recommendations, UserQuery


class Ranker(Protocol):
    """What evaluation asks of a model: every :class:`~coldbrew.models.Recommender` is one, and
    so is a pipeline that only ranks (the cross-encoder reranker)."""

    def recommend_batch(
        self,
        queries: Sequence[UserQuery],
        k: int = 10,
        *,
        exclude: Sequence[Iterable[str]] | None = None,
        candidates: Iterable[str] | None = None,
        exclude_seen: bool = True,
    ) -> list[Recommendations]: ...


@dataclass
class EvalResult:
    """Mean metrics plus the per-user values they came from (for bootstrap intervals)."""

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    users: list[str]


@dataclass
class QuerySet:
    """The queries of one evaluation (one ``k`` on cold-user) and what each should find.

    The lists run parallel to ``users``: ``exclude`` is what ranking skips for that user,
    ``relevant`` what it should find. ``left_out`` counts cold users with too few positives
    for this ``k``.
    """

    k: int | None
    users: list[str]
    queries: list[UserQuery]
    exclude: list[set[str]]
    relevant: list[set[str]]
    candidates: list[str] | None
    left_out: int = 0

    def subset(self, users: Sequence[str]) -> QuerySet:
        """The same queries for ``users`` only (each one of :attr:`users`), in that order."""
        row = {u: i for i, u in enumerate(self.users)}
        rows = [row[u] for u in users]
        return QuerySet(
            self.k,
            list(users),
            [self.queries[i] for i in rows],
            [self.exclude[i] for i in rows],
            [self.relevant[i] for i in rows],
            self.candidates,
            self.left_out,
        )


def relevant_by_user(frame: pd.DataFrame) -> dict[str, set[str]]:
    return {str(u): set(g[ITEM_ID]) for u, g in frame.groupby(USER_ID, sort=True)}


def build_queries(split: Split, *, part: str = "test", k: int | None = None) -> QuerySet:
    """What to ask, and what to find, for every user with interactions in ``part``.

    Cold-user splits need ``k``: each user reveals their ``k`` earliest positives as liked
    items (:func:`~coldbrew.eval.protocols.k_shot`), ranking excludes them and the rest are
    relevant. Cold-item and warm splits take no ``k``: users are known and queried by id, and
    ranking excludes what they have in train and, for the test part, in val. Where the events
    carry a context, each query asks in the context of the first event it must find (the
    ``k``-th of a cold user's, the earliest of a known user's in ``part``). Next-item splits
    take no ``k`` either: see :func:`next_item_queries`. Candidates are the split's (``None``:
    every item).
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    if split.protocol == "cold-user":
        if k is None:
            raise ValueError(
                "a cold-user split needs k, the number of each user's earliest positives to "
                f"reveal (this split was made for k in {split.info.get('k_values', '?')})"
            )
        view = k_shot(split, k, part=part)
        users = view.users
        asked = next_contexts(getattr(split, part))
        return QuerySet(
            k,
            users,
            [
                UserQuery(user_id=u, liked=view.revealed[u], context=context_at(asked, u, k))
                for u in users
            ],
            [set(view.revealed[u]) for u in users],
            [view.relevant[u] for u in users],
            split.candidates,
            view.left_out,
        )
    if k is not None:
        raise ValueError(f"k applies to cold-user splits only; this split is {split.protocol!r}")
    if split.protocol == "next-item":
        return next_item_queries(split, part)
    relevant = relevant_by_user(getattr(split, part))
    known = relevant_by_user(split.train)
    if part == "test":
        for user, items in relevant_by_user(split.val).items():
            known.setdefault(user, set()).update(items)
    users = sorted(relevant)
    asked = next_contexts(getattr(split, part))
    return QuerySet(
        None,
        users,
        [UserQuery(user_id=u, context=context_at(asked, u, 0)) for u in users],
        [known.get(u, set()) for u in users],
        [relevant[u] for u in users],
        split.candidates,
    )


def next_item_queries(split: Split, part: str) -> QuerySet:
    """Next-item: each user is asked with their whole earlier history revealed as liked items
    (:func:`~coldbrew.eval.protocols.next_item_view`), which ranking excludes, in the target
    event's context where events carry one; one relevant item, over the whole catalogue."""
    view = next_item_view(split, part=part)
    users = view.users
    asked = next_contexts(getattr(split, part))  # one event per user: the target
    return QuerySet(
        None,
        users,
        [
            UserQuery(user_id=u, liked=view.revealed[u], context=context_at(asked, u, 0))
            for u in users
        ],
        [set(view.revealed[u]) for u in users],
        [{view.target[u]} for u in users],
        None,
        view.left_out,
    )


def rank_queries(
    model: Ranker,
    queries: QuerySet,
    k: int,
    *,
    batch_size: int = 256,
    desc: str = "rank",
    show_progress: bool = False,
    leave: bool = True,
) -> list[list[str]]:
    """The top ``k`` ids for every query of ``queries``, asked in batches."""
    ranked: list[list[str]] = []
    starts = range(0, len(queries.users), batch_size)
    for start in tqdm(starts, desc=desc, leave=leave, disable=not show_progress):
        stop = start + batch_size
        recs = model.recommend_batch(
            queries.queries[start:stop],
            k,
            exclude=queries.exclude[start:stop],
            candidates=queries.candidates,
            exclude_seen=False,
        )
        ranked.extend(r.ids for r in recs)
    return ranked


def evaluate_rankings(
    ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]], ks: Sequence[int] = (10, 20)
) -> dict[str, np.ndarray]:
    """Per-user arrays for every metric in :data:`METRICS` at every ``k``."""
    return {f"{name}@{k}": fn(ranked, relevant, k) for name, fn in METRICS.items() for k in ks}


def evaluate(
    model: Ranker,
    split: Split,
    *,
    part: str = "test",
    k_shot: int | None = None,
    users: Sequence[str] | None = None,
    ks: Sequence[int] = (10, 20),
    batch_size: int = 256,
    show_progress: bool = False,
) -> EvalResult:
    """Rank for every user with interactions in ``part`` (see :func:`build_queries`).

    Cold-item and warm: users are known and queried by id. Cold-user: ``k_shot`` is required
    (there is no default: every ``k`` is a different task); each user is queried with their
    ``k_shot`` earliest positives as liked items and is scored on the rest. ``users`` keeps
    only those of them (a sample, when ranking is costly).
    """
    queries = build_queries(split, part=part, k=k_shot)
    if users is not None:
        wanted = set(users)
        queries = queries.subset([u for u in queries.users if u in wanted])
    ranked = rank_queries(
        model,
        queries,
        max(ks),
        batch_size=batch_size,
        desc=f"evaluate {type(model).__name__}",
        show_progress=show_progress,
    )
    per_user = evaluate_rankings(ranked, queries.relevant, ks)
    metrics = {name: mean_metric(v) for name, v in per_user.items()}
    return EvalResult(metrics, per_user, queries.users)
