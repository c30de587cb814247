"""Ranking metrics as free functions over ranked id lists and relevant-id sets.

Every function returns one value per user. A user with no relevant items gets NaN (they carry no
signal; :func:`mean_metric` skips them). Recall divides by the number of relevant items; NDCG's
ideal DCG counts ``min(len(relevant), k)`` hits at the top.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

Ranked = Sequence[Sequence[str]]
Relevant = Sequence[Collection[str]]


def _check(ranked: Ranked, relevant: Relevant, k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(ranked) != len(relevant):
        raise ValueError(f"got {len(ranked)} ranked lists but {len(relevant)} relevant sets")


def hits(ranked: Ranked, relevant: Relevant, k: int) -> np.ndarray:
    """Boolean matrix ``(n_users, k)``: is the item at each rank relevant (False past the list)."""
    _check(ranked, relevant, k)
    out = np.zeros((len(ranked), k), dtype=bool)
    for u, (items, rel) in enumerate(zip(ranked, relevant)):
        rel_set = set(rel)
        for r, item in enumerate(list(items)[:k]):
            out[u, r] = item in rel_set
    return out


def _sizes(relevant: Relevant) -> np.ndarray:
    return np.asarray([len(set(r)) for r in relevant], dtype=np.float64)


def _masked(values: object, sizes: np.ndarray) -> np.ndarray:
    return np.where(sizes > 0, np.asarray(values, dtype=np.float64), np.nan)


def recall_at_k(ranked: Ranked, relevant: Relevant, k: int) -> np.ndarray:
    sizes = _sizes(relevant)
    found = hits(ranked, relevant, k).sum(axis=1)
    return _masked(found / np.maximum(sizes, 1), sizes)


def precision_at_k(ranked: Ranked, relevant: Relevant, k: int) -> np.ndarray:
    sizes = _sizes(relevant)
    return _masked(hits(ranked, relevant, k).sum(axis=1) / k, sizes)


def hit_rate_at_k(ranked: Ranked, relevant: Relevant, k: int) -> np.ndarray:
    sizes = _sizes(relevant)
    return _masked(hits(ranked, relevant, k).any(axis=1).astype(np.float64), sizes)


def f1_at_k(ranked: Ranked, relevant: Relevant, k: int) -> np.ndarray:
    p = precision_at_k(ranked, relevant, k)
    r = recall_at_k(ranked, relevant, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return np.where(np.isnan(p), np.nan, f1)


def ndcg_at_k(ranked: Ranked, relevant: Relevant, k: int) -> np.ndarray:
    sizes = _sizes(relevant)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits(ranked, relevant, k) @ discounts
    ideal = np.asarray([discounts[: int(min(s, k))].sum() for s in sizes])
    with np.errstate(invalid="ignore", divide="ignore"):
        return _masked(np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1), 0.0), sizes)


def mrr_at_k(ranked: Ranked, relevant: Relevant, k: int) -> np.ndarray:
    sizes = _sizes(relevant)
    h = hits(ranked, relevant, k)
    first = np.where(h.any(axis=1), 1.0 / (h.argmax(axis=1) + 1), 0.0)
    return _masked(first, sizes)


METRICS = {
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "precision": precision_at_k,
    "hit_rate": hit_rate_at_k,
}


def mean_metric(values: np.ndarray) -> float:
    """Mean over users that had relevant items (NaN rows skipped); 0.0 when there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else 0.0
