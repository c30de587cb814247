"""Serving-time diversity and novelty: re-ranking a model's scores before the top ``k`` is cut.

Both controls act on a *pool*, the best :func:`pool_size` items by the model's own score, so
they reorder what the model already finds relevant rather than reaching into the tail:

- **novelty** (``>= 0``, 0 = off) subtracts ``novelty`` times the z-scored log popularity from
  the z-scored scores, so the knob means the same on every model whatever its score scale (1: one
  standard deviation more popular costs one standard deviation of score);
- **diversity** (``[0, 1]``, 0 = off) picks the list by maximal marginal relevance (Carbonell and
  Goldstein, 1998) over the item vectors, with ``lambda = 1 - diversity``: each next item is the
  one with the best ``lambda * relevance - (1 - lambda) * max cosine to those already picked``,
  relevance being the (novelty-adjusted) score rescaled to ``[0, 1]`` over the pool.

With both at 0 the ranking is the model's own, exactly.
"""

from __future__ import annotations

import numpy as np

POOL_FACTOR = 5
MIN_POOL = 50


def pool_size(k: int) -> int:
    """How many of the best-scored items the controls choose ``k`` from: ``max(5k, 50)``."""
    return max(POOL_FACTOR * k, MIN_POOL)


def check_controls(diversity: float, novelty: float) -> None:
    """Raise ``ValueError`` unless ``diversity`` is in ``[0, 1]`` and ``novelty`` is finite and
    at least 0."""
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1] (0 = off), got {diversity}")
    if not (np.isfinite(novelty) and novelty >= 0.0):
        raise ValueError(f"novelty must be a finite number >= 0 (0 = off), got {novelty}")


def candidate_pool(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the best :func:`pool_size` finite ``scores``, best first (ties: lower
    position first).

    Parameters
    ----------
    scores
        One user's scores, ``(n,)``; ``-inf`` marks an item that may not be recommended.
    k
        How many items the answer will hold.

    Returns
    -------
    numpy.ndarray
        int64 positions into ``scores``.
    """
    finite = np.flatnonzero(np.isfinite(scores))
    order = np.argsort(-scores[finite], kind="stable")[: pool_size(k)]
    pool: np.ndarray = finite[order].astype(np.int64)
    return pool


def zscore(values: np.ndarray) -> np.ndarray:
    """``values`` centred and scaled to unit standard deviation (all zeros if constant)."""
    values = np.asarray(values, dtype=np.float64)
    spread = values.std() if len(values) else 0.0
    if not np.isfinite(spread) or spread == 0.0:
        return np.zeros_like(values)
    centred: np.ndarray = (values - values.mean()) / spread
    return centred


def with_novelty(scores: np.ndarray, popularity: np.ndarray, novelty: float) -> np.ndarray:
    """z-scored ``scores`` minus ``novelty`` times z-scored ``log(1 + popularity)``.

    Parameters
    ----------
    scores
        Finite scores of the pool's items, ``(n,)``.
    popularity
        Their interaction counts, ``(n,)``, ``>= 0``.
    novelty
        The penalty weight, ``>= 0``.

    Returns
    -------
    numpy.ndarray
        float64 adjusted scores, comparable across models.
    """
    adjusted: np.ndarray = zscore(scores) - novelty * zscore(np.log1p(popularity))
    return adjusted


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, diversity: float) -> np.ndarray:
    """Greedy maximal marginal relevance: positions of ``k`` items (fewer if fewer are given),
    in the order picked.

    Parameters
    ----------
    relevance
        Finite relevance of each candidate, ``(n,)`` (any scale: rescaled to ``[0, 1]`` here).
    vectors
        Their unit item vectors, ``(n, dim)``; similarity is the dot product.
    k
        How many to pick.
    diversity
        ``1 - lambda``, in ``[0, 1]``: 0 picks by relevance alone, 1 by dissimilarity alone
        (the most relevant item still comes first).

    Returns
    -------
    numpy.ndarray
        int64 positions into ``relevance``.
    """
    n = len(relevance)
    if n == 0 or k < 1:
        return np.zeros(0, dtype=np.int64)
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.zeros(n)
    vecs = np.asarray(vectors, dtype=np.float32)
    picked = [int(np.argmax(rel))]  # nothing to differ from yet: the most relevant
    closest = vecs @ vecs[picked[0]]  # each candidate's highest similarity to a picked item
    free = np.ones(n, dtype=bool)
    free[picked[0]] = False
    for _ in range(min(k, n) - 1):
        gain = np.where(free, (1.0 - diversity) * rel - diversity * closest, -np.inf)
        best = int(np.argmax(gain))
        picked.append(best)
        free[best] = False
        closest = np.maximum(closest, vecs @ vecs[best])
    return np.asarray(picked, dtype=np.int64)


def rerank(
    scores: np.ndarray,
    k: int,
    *,
    vectors: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    diversity: float = 0.0,
    novelty: float = 0.0,
) -> np.ndarray:
    """The top ``k`` of a pool with the diversity and novelty controls applied.

    Parameters
    ----------
    scores
        The model's finite scores of the pool's items, best first (:func:`candidate_pool`).
    k
        How many items to return.
    vectors
        The items' unit text vectors, ``(n, dim)``; needed when ``diversity > 0``.
    popularity
        The items' interaction counts, ``(n,)``; needed when ``novelty > 0``.
    diversity
        In ``[0, 1]``; 0: off.
    novelty
        ``>= 0``; 0: off.

    Returns
    -------
    numpy.ndarray
        int64 positions into ``scores`` of the chosen items, in answer order.

    Raises
    ------
    ValueError
        On a control out of range, or one that is on without the input it needs.
    """
    check_controls(diversity, novelty)
    relevance = np.asarray(scores, dtype=np.float64)
    if novelty > 0:
        if popularity is None or len(popularity) != len(relevance):
            raise ValueError("novelty needs one popularity count per scored item")
        relevance = with_novelty(relevance, np.asarray(popularity, dtype=np.float64), novelty)
    if diversity == 0:
        top: np.ndarray = np.argsort(-relevance, kind="stable")[:k].astype(np.int64)
        return top
    if vectors is None or len(vectors) != len(relevance):
        raise ValueError("diversity needs one item vector per scored item")
    return mmr(relevance, vectors, k, diversity)


def check_asked(k: int, diversity: float, novelty: float) -> None:
    """Refuse a ``k`` below 1 and controls out of range (:func:`check_controls`)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    check_controls(diversity, novelty)
