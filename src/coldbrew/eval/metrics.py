"""Ranking metrics as free functions over ranked id lists and relevant-id sets.

NDCG also comes vectorised over score rows (:func:`ndcg_at_k_scores`, which the hybrid's weight
search runs thousands of times); both forms share :func:`ndcg_of_hits`. :func:`ndcg_of_rank` is
NDCG from the rank of a single relevant item (the held-out next event of a replay or a refit).

Every function returns one value per user. A user with no relevant items gets NaN (they carry no
signal; :func:`mean_metric` skips them). Recall divides by the number of relevant items; NDCG's
ideal DCG counts ``min(len(relevant), k)`` hits at the top.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

Ranked = Sequence[Sequence[str]]
Relevant = Sequence[Collection[str]]


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1 (the smallest value), tied values sharing the mean of their ranks (as
    ``scipy.stats.rankdata(method="average")``, whose import costs a second at start-up)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_tie = np.r_[True, ordered[1:] != ordered[:-1]] if len(values) else np.zeros(0, bool)
    starts = np.flatnonzero(starts_tie)
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2.0)[np.cumsum(starts_tie) - 1]
    return ranks


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
    return recall_of_hits(hits(ranked, relevant, k), _sizes(relevant))


def recall_of_hits(found: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Recall per row of a boolean hit matrix: its hits over the row's number of relevant
    items (also those outside ``found``); NaN for a row with none."""
    return _masked(found.sum(axis=1) / np.maximum(n_relevant, 1), n_relevant)


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
    return ndcg_of_hits(hits(ranked, relevant, k), _sizes(relevant), k)


def ndcg_of_hits(found: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@``k`` per row of a hit matrix.

    Parameters
    ----------
    found : np.ndarray
        Boolean, shape ``(n_users, m)`` with ``m <= k``: is the item at each rank relevant.
    n_relevant : np.ndarray
        Each user's number of relevant items, also those outside ``found`` (the ideal DCG counts
        ``min(n_relevant, k)`` hits at the top).
    k : int
        The cut-off.

    Returns
    -------
    np.ndarray
        One value per user; NaN where ``n_relevant`` is 0.
    """
    if found.shape[1] > k:
        raise ValueError(f"a hit matrix for NDCG@{k} has at most {k} columns, got {found.shape}")
    discounts = _discounts(k)
    counts = np.asarray(n_relevant)
    ideal = np.cumsum(discounts)[np.clip(counts, 1, k).astype(np.int64) - 1]
    return _masked((found @ discounts[: found.shape[1]]) / ideal, counts)


def ndcg_of_rank(ranks: np.ndarray, k: int) -> np.ndarray:
    """NDCG@``k`` of users with one relevant item each, from that item's rank.

    Parameters
    ----------
    ranks : np.ndarray
        Each user's 1-based rank of their relevant item; a rank past ``k``, or 0 (not ranked),
        scores 0.
    k : int
        The cut-off.

    Returns
    -------
    np.ndarray
        One value per user: ``1 / log2(rank + 1)`` within the top ``k`` (one relevant item's
        ideal DCG is 1), as :func:`ndcg_of_hits` gives for a single hit at that rank.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ranks = np.asarray(ranks)
    hit = (ranks >= 1) & (ranks <= k)
    gains = np.zeros(ranks.shape)
    gains[hit] = _discounts(k)[ranks[hit].astype(np.int64) - 1]
    return gains


def _discounts(k: int) -> np.ndarray:
    """DCG's discount of each rank 1..``k``: ``1 / log2(rank + 1)``."""
    out: np.ndarray = 1.0 / np.log2(np.arange(2, k + 2))
    return out


def _top_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` highest columns, in column order; among scores equal to the k-th
    highest, the lowest columns (the k-th value itself is the same whatever the sort kernel)."""
    if np.isnan(scores).any():
        scores = np.where(np.isnan(scores), -np.inf, scores)
    n = scores.shape[1]
    kth = np.partition(scores, n - k, axis=1)[:, n - k : n - k + 1]
    above, ties = scores > kth, scores == kth
    need = k - above.sum(axis=1, keepdims=True)
    chosen = above | (ties & (np.cumsum(ties, axis=1) <= need))
    columns: np.ndarray = np.nonzero(chosen)[1].reshape(len(scores), k)
    return columns


def top_hits(scores: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """The hit matrix of each row's top ``k`` columns by score, best first.

    ``scores`` and the boolean ``relevant`` have the same shape ``(n_users, n_items)``; the result
    has ``min(k, n_items)`` columns, and a column is a hit only where its score is finite. Equal
    scores rank by column, lowest first (NaN as -inf): the same hits on every machine, where
    which tied columns ``argpartition`` keeps at the k-th place is not promised (it moved with
    numpy's version or the CPU's sort kernels).
    """
    if scores.shape != relevant.shape:
        raise ValueError(f"scores {scores.shape} and relevant {relevant.shape} differ in shape")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, scores.shape[1])
    if k == 0:
        return np.zeros((len(scores), 0), dtype=bool)
    top = _top_columns(scores, k)
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    finite = np.isfinite(np.take_along_axis(top_scores, order, axis=1))
    found: np.ndarray = np.take_along_axis(relevant, top, axis=1) & finite
    return found


def ndcg_at_k_scores(
    scores: np.ndarray, relevant: np.ndarray, n_relevant: np.ndarray, k: int
) -> np.ndarray:
    """:func:`ndcg_at_k` over score rows instead of ranked lists (vectorised over users).

    Parameters
    ----------
    scores : np.ndarray
        Shape ``(n_users, n_items)``; ``-inf`` for items that must not rank (where fewer than
        ``k`` are finite, they fill the rest of the top ``k`` but never count as hits).
    relevant : np.ndarray
        Boolean, same shape: which of these items are relevant to the user.
    n_relevant : np.ndarray
        Each user's number of relevant items, also those outside the matrix.
    k : int
        The cut-off.

    Returns
    -------
    np.ndarray
        One value per user; NaN where ``n_relevant`` is 0.
    """
    if len(n_relevant) != len(scores):
        raise ValueError(f"got {len(scores)} score rows but {len(n_relevant)} relevant counts")
    return ndcg_of_hits(top_hits(scores, relevant, k), n_relevant, k)


def mrr_at_k(ranked: Ranked, relevant: Relevant, k: int) -> np.ndarray:
    sizes = _sizes(relevant)
    h = hits(ranked, relevant, k)
    first = np.where(h.any(axis=1), 1.0 / (h.argmax(axis=1) + 1), 0.0)
    return _masked(first, sizes)


METRICS = {
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "precision": precision_at_k,
    "f1": f1_at_k,
    "hit_rate": hit_rate_at_k,
    "mrr": mrr_at_k,
}


def mean_metric(values: np.ndarray) -> float:
    """Mean over users that had relevant items (NaN rows skipped); 0.0 when there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else 0.0


def coverage_at_k(ranked: Ranked, catalogue_size: int, k: int) -> float:
    """Share of the catalogue (the items that could be recommended) in anyone's top ``k``."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if catalogue_size < 1:
        raise ValueError(f"catalogue_size must be at least 1, got {catalogue_size}")
    shown = {item for items in ranked for item in list(items)[:k]}
    return min(len(shown) / catalogue_size, 1.0)


def intra_list_similarity(vectors: np.ndarray) -> float:
    """Mean cosine between the distinct pairs of one list's unit item vectors, ``(n, dim)``
    (lower: a more diverse list); NaN for a list of fewer than two items."""
    vectors = np.asarray(vectors, dtype=np.float64)
    n = len(vectors)
    if n < 2:
        return float("nan")
    sims = vectors @ vectors.T
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def popularity_percentiles(counts: Mapping[str, float]) -> dict[str, float]:
    """Each item's popularity percentile in ``[0, 1]`` (0: least popular; ties share the mean)."""
    if not counts:
        return {}
    ids = list(counts)
    ranks = average_ranks(np.asarray([counts[i] for i in ids], dtype=np.float64))
    scale = max(len(ids) - 1, 1)
    return {i: float((r - 1) / scale) for i, r in zip(ids, ranks)}


def popularity_percentile_at_k(
    ranked: Ranked, percentiles: Mapping[str, float], k: int
) -> np.ndarray:
    """Per user, the mean popularity percentile of their top ``k`` (lower: more novel).

    Items missing from ``percentiles`` count as 0 (never seen in training); an empty list is NaN.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    out = np.full(len(ranked), np.nan)
    for u, items in enumerate(ranked):
        top = list(items)[:k]
        if top:
            out[u] = float(np.mean([percentiles.get(i, 0.0) for i in top]))
    return out


def bootstrap_ci(
    values: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 42
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over users (NaN rows skipped), seeded.

    Returns ``(nan, nan)`` when no user has a value.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[~np.isnan(finite)]
    if not len(finite):
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 100):
        stop = min(start + 100, n_resamples)
        idx = rng.integers(0, len(finite), size=(stop - start, len(finite)))
        means[start:stop] = finite[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return (float(low), float(high))
