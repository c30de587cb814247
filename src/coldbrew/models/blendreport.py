"""What a hybrid says of its weights for some users: the groups of them that share one blend,
largest first, beside what the inner validation saw for each group
(:meth:`~coldbrew.models.hybrid.HybridRecommender.blend_report`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from coldbrew.models.weights import USER_EDGES, USER_KINDS, user_bucket

REPORTED = (
    "queries",
    "chosen",
    "best_part",
    "best_part_ndcg",
    "oof_gain",
    "oof_gain_se",
    *(f"shape_{g}_{s}" for s in ("random", "latest") for g in ("gain", "se")),
    "by_shape",
)
"""What a group's report repeats from its validation entry (``queries`` there becomes
``val_queries``); the gains on each shape of query only where the search judged them
(:class:`~coldbrew.models.weights.WeightSearch`'s ``every_shape`` or ``each_shape``, which
also report their search over every bucket of the cell, repeated as ``cell_wide``)."""


def blend_groups(
    seen: Iterable[tuple[int, int, np.ndarray]],
    names: Sequence[str],
    validation: Mapping[str, Any],
    cell: int,
) -> list[dict[str, Any]]:
    """One entry per group of users blended alike on item ``cell``, largest first.

    ``seen`` holds, per user, their kind (an index into :data:`USER_KINDS`), how many items
    they liked and their weights on ``cell``, one per part of ``names``; ``validation`` is the
    hybrid's (the chosen weights' NDCG@20 and the best single part's, per cell, group and
    bucket).
    """
    groups: dict[tuple[str, int, tuple[tuple[str, float], ...]], int] = {}
    for known, liked, weights in seen:
        who = USER_KINDS[known]
        shares = tuple((n, round(float(w), 4)) for n, w in zip(names, weights) if w > 0)
        key = (who, USER_EDGES[user_bucket(liked)], shares)
        groups[key] = groups.get(key, 0) + 1
    out = []
    for (who, edge, shares), count in sorted(groups.items(), key=lambda kv: -kv[1]):
        entry = validation.get(f"cell{cell}/{who}/bucket{edge}", {})
        out.append(
            {"users": f"{who}, {edge}+ liked", "test_users": count, "weights": dict(shares)}
            | {("val_queries" if k == "queries" else k): entry[k] for k in REPORTED if k in entry}
        )
        if whole := validation.get(f"cell{cell}/{who}/all"):  # the search over every bucket
            out[-1]["cell_wide"] = {k: v for k, v in whole.items() if k != "weights"}
    return out
