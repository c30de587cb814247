"""The hybrid's inner validation: held-out items, held-out users revealing their first items and
held-out likes of returning users, carved from the training data only, as the evaluation
protocols carve their test sets (:mod:`coldbrew.eval.protocols`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.schema import (
    ITEM_ID,
    USER_ID,
    Dataset,
    context_at,
    has_timestamps,
    history_by_user,
    next_contexts,
)
from coldbrew.eval.protocols import hold_out, reveal_earliest, steps_from_latest
from coldbrew.models.query import UserQuery
from coldbrew.models.selection import ValTask

REVEALED = (0, 1, 3, 5, 10, 20)
"""How many items the inner validation's held-out users reveal (the cold-user protocol's k)."""

NEXT_ITEM_STEPS = 3
"""The hybrid's default ``next_item``: each time-ordered returning user's latest three held-out
likes, not the latest alone, about three times the queries behind the weights of users who
reveal likes; chosen on validation only, leave one dataset out (issue 24,
benchmarks/notes/2026-12-07-next-item-selection.md)."""


def inner_validation(
    dataset: Dataset,
    *,
    seed: int,
    fraction: float = 0.1,
    max_queries: int = 300,
    next_item: int = 0,
) -> tuple[Dataset, list[ValTask]]:
    """Carve held-out items, held-out users (k-shot) and held-out warm interactions from
    ``dataset``'s positives; return the remaining training data and the validation tasks.

    Items and users are held out as the evaluation protocols do
    (:func:`~coldbrew.eval.protocols.hold_out`); held-out users reveal their earliest items as in
    the cold-user protocol (:func:`~coldbrew.eval.protocols.reveal_earliest`). Warm interactions
    are held out one by one with probability ``fraction`` (a user may lose all of theirs), unlike
    the warm protocol's exact per-user share. When the interactions have timestamps, half of the
    warm users lose as many as that draw gave them but their latest ones (:func:`latest_for_half`):
    a served model meets returning users' next likes, not random ones, and only that kind of
    query rewards a part that reads the order of likes. With ``next_item`` (a count; ``True``
    is one), those of them who lost more than one are asked again, in a task of their own, for
    their very latest like with everything before it revealed (:func:`next_item_query`), and
    for as many of the likes before it as ``next_item`` says, each with everything before it
    revealed (at most ``max_queries`` in all), as the next-item protocol asks
    (and a served returning user, whose likes the service records at once): each reveals likes
    beyond their training history, as those queries do; the training rows are the same, so the
    other tasks do not move.
    """
    rng = np.random.default_rng(seed)
    pos = dataset.positives().reset_index(drop=True)
    pos = pos.assign(**{USER_ID: pos[USER_ID].astype(str), ITEM_ID: pos[ITEM_ID].astype(str)})
    cold_users = hold_out(pos[USER_ID], fraction, rng)
    cold_items = hold_out(pos[ITEM_ID], fraction, rng)
    is_cu = pos[USER_ID].isin(cold_users).to_numpy()
    is_ci = pos[ITEM_ID].isin(cold_items).to_numpy()
    warm = pos[~is_cu & ~is_ci]
    held = rng.random(len(warm)) < fraction
    latest_users: set[str] = set()
    if has_timestamps(pos):
        # its own draws: the rest of the validation is the same queries with or without time
        held, moved = latest_for_half(warm, held, np.random.default_rng([seed, 1]))
        latest_users = set(warm[USER_ID][moved])
    asked_again = latest_users if next_item else set()
    train = warm[~held]
    train_hist = history_by_user(train)
    tasks: list[ValTask] = []

    def add(
        cell: int,
        qs: list[UserQuery],
        ex: list[set[str]],
        rel: list[set[str]],
        cand: list[str] | None,
    ) -> bool:
        if len(qs) > max_queries:
            keep = np.sort(rng.choice(len(qs), max_queries, replace=False))
            qs, ex, rel = [qs[i] for i in keep], [ex[i] for i in keep], [rel[i] for i in keep]
        if qs:
            tasks.append(ValTask(cell, qs, ex, rel, cand))
        return bool(qs)

    # held-out items: users with a training history look for them among the held-out items
    ci = pos[is_ci & ~is_cu].groupby(USER_ID)[ITEM_ID].apply(set).to_dict()
    ci = {u: r for u, r in ci.items() if u in train_hist}
    ci_ctx = next_contexts(pos[is_ci & ~is_cu])
    add(
        0,
        [UserQuery(user_id=u, context=context_at(ci_ctx, u, 0)) for u in ci],
        [set(train_hist[u]) for u in ci],
        list(ci.values()),
        sorted(cold_items),
    )
    # held-out users reveal their k earliest items
    cu_hist = history_by_user(pos[is_cu & ~is_ci])
    cu_ctx = next_contexts(pos[is_cu & ~is_ci])
    for k in REVEALED:
        shot = reveal_earliest(cu_hist, k)
        add(
            1,
            [
                UserQuery(user_id=u, liked=shown, context=context_at(cu_ctx, u, k))
                for u, shown in shot.revealed.items()
            ],
            [set(shown) for shown in shot.revealed.values()],
            list(shot.relevant.values()),
            None,
        )
    # warm users' held-out interactions
    wh = warm[held].groupby(USER_ID)[ITEM_ID].apply(set).to_dict()
    wh = {u: r for u, r in wh.items() if u in train_hist}
    wh_ctx = next_contexts(warm[held])
    asked = [UserQuery(user_id=u, context=context_at(wh_ctx, u, 0)) for u in wh]
    warm_asked = add(1, asked, [set(train_hist[u]) for u in wh], list(wh.values()), None)
    if warm_asked:  # each query's shape: the user's latest likes held out, or random ones
        tasks[-1].latest = [q.user_id in latest_users for q in tasks[-1].queries]
    if warm_asked and asked_again:
        # the time-ordered half of those users again, asked for their very latest like
        runs = history_by_user(warm[held])
        # a run of one asks what the run's own query asks, and reveals nothing beyond training
        users = [
            str(q.user_id)
            for q in tasks[-1].queries
            if q.user_id in asked_again and len(runs[str(q.user_id)]) > 1
        ]
        steps = int(next_item)
        nexts = [
            next_item_query(u, train_hist[u], runs[u][:end], wh_ctx)
            for u in users
            for end in range(len(runs[u]), max(1, len(runs[u]) - steps), -1)  # 2+ likes a run
        ]
        nexts = [n for n in nexts if not n[2] <= n[1]]  # a target already revealed is lost
        if nexts:
            qs, ex, rel = (list(column) for column in zip(*nexts, strict=True))
            add(1, qs, ex, rel, None)  # add() samples more than max_queries down
    return dataset.with_interactions(train), tasks


def next_item_query(
    user: str, history: list[str], run: list[str], contexts: Mapping[str, list[Any]]
) -> tuple[UserQuery, set[str], set[str]]:
    """A returning ``user``'s next-item validation query, what it excludes and what it must
    find: the latest of the held-out ``run`` (oldest first), with the training ``history`` and
    the rest of the run revealed, as the next-item protocol's test query reveals the validation
    item."""
    liked = (*history, *run[:-1])
    context = context_at(contexts, user, len(run) - 1)
    return UserQuery(user_id=user, liked=liked, context=context), set(liked), {run[-1]}


def latest_for_half(
    warm: pd.DataFrame, held: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``held`` (a mask over ``warm``'s rows) with a random half of the users' held-out rows
    moved to their latest ones, by timestamp then file order, as many as they had; and the mask
    of that half's rows."""
    codes, names = pd.factorize(warm[USER_ID], sort=True)
    latest_users = rng.random(len(names)) < 0.5
    n_held = np.bincount(codes, weights=held, minlength=len(names))
    latest = steps_from_latest(warm) < n_held[codes]
    moved = latest_users[codes]
    return np.where(moved, latest, held), moved
