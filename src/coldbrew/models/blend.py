"""One blend: weights x parts -> scores -> NDCG@20, for the hybrid's weight search and for
every benchmark that compares weightings.

:class:`Prepared` is one validation task scored once by every part over each query's
candidates (:meth:`~coldbrew.models.hybrid.HybridRecommender.prepare` builds it).
:func:`blend_scores` sums the parts' scores, each weighted, per candidate, as the hybrid scores
(weights by the query's user bucket, the candidate's item cell and whether the user is known);
:func:`blend_ndcg` measures that blend by NDCG (:func:`~coldbrew.eval.metrics.ndcg_at_k_scores`)
for one weighting or a whole grid of them; :func:`blend_recall` by recall (the next-item
protocol's headline).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from coldbrew.eval.metrics import ndcg_of_hits, recall_of_hits, top_hits
from coldbrew.models.selection import holds_both_shapes

K = 20
"""The cut-off the weights are chosen by."""


@dataclass(frozen=True)
class Prepared:
    """One validation task's queries, each scored by every part over its candidates.

    Every ``(queries, candidates)`` array is aligned: row ``q`` holds query ``q``'s candidates.

    Parameters
    ----------
    parts : tuple of np.ndarray
        Each part's standardised scores, float32 ``(queries, candidates)``, in the hybrid's
        order of parts.
    ties : np.ndarray
        The hybrid's tiny per-item tie-break offsets, ``(queries, candidates)``.
    cells : np.ndarray
        Each candidate's item cell, ``(queries, candidates)``: 0 for an item without training
        interactions, 1 for the others.
    relevant : np.ndarray
        Boolean ``(queries, candidates)``: the candidates the query must find.
    n_relevant : np.ndarray
        Each query's number of relevant items, those outside its candidates too, ``(queries,)``.
    pad : np.ndarray
        Boolean ``(queries, candidates)``: padding and excluded items, which never rank.
    buckets : np.ndarray
        Each query's user bucket (an index into
        :data:`~coldbrew.models.weights.USER_EDGES`), ``(queries,)``.
    known : np.ndarray
        1 where the query's user has a training history (a returning user), else 0.
    flat : np.ndarray
        Boolean per part: it scores every candidate of the task's item cell alike, for every
        query (it can only add a constant there).
    silent : np.ndarray
        Boolean per part: it scores every item alike for every query, or learned nothing.
    latest : np.ndarray
        Boolean ``(queries,)``: the query holds out its user's latest likes (the warm-latest
        protocol's shape), else random ones or it is no returning user's query; all False
        when not given.
    """

    parts: tuple[np.ndarray, ...]
    ties: np.ndarray
    cells: np.ndarray
    relevant: np.ndarray
    n_relevant: np.ndarray
    pad: np.ndarray
    buckets: np.ndarray
    known: np.ndarray
    flat: np.ndarray
    silent: np.ndarray
    latest: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        n = len(self.n_relevant)
        if not len(self.latest):
            object.__setattr__(self, "latest", np.zeros(n, dtype=bool))
        elif len(self.latest) != n:
            raise ValueError(f"latest must hold one flag per query ({n}), got {len(self.latest)}")

    def take_queries(self, rows: np.ndarray) -> Prepared:
        """The same task cut to the queries ``rows`` (a boolean mask or indices) selects."""
        cut = {name: getattr(self, name)[rows] for name in PER_QUERY}
        return replace(self, parts=tuple(p[rows] for p in self.parts), **cut)

    def take_parts(self, cols: Sequence[int]) -> Prepared:
        """The same task with only the parts ``cols`` (indices, in the order given)."""
        picked = list(cols)
        parts = tuple(self.parts[j] for j in picked)
        return replace(self, parts=parts, flat=self.flat[picked], silent=self.silent[picked])


PER_QUERY = ("ties", "cells", "relevant", "n_relevant", "pad", "buckets", "known", "latest")
"""The fields of :class:`Prepared` with one row per query (besides :attr:`Prepared.parts`)."""


def blend_scores(prepared: Prepared, weights: np.ndarray) -> np.ndarray:
    """The blend of each query's candidates, as the hybrid scores them.

    Parameters
    ----------
    prepared : Prepared
        The scored task.
    weights : np.ndarray
        One weight per part, ``(parts,)``, the same for every candidate; or the hybrid's table
        :attr:`~coldbrew.models.hybrid.HybridRecommender.weights`, ``(user buckets, item cells,
        known, parts)``, read at each query's bucket and known flag and each candidate's cell.

    Returns
    -------
    np.ndarray
        Float32 ``(queries, candidates)``: the weighted sum of the parts' scores plus the
        tie-break offsets; ``-inf`` where :attr:`Prepared.pad` is set.
    """
    return _Blender(prepared).scores(_per_query(prepared, weights))


def blend_ndcg(prepared: Prepared, weights: np.ndarray, k: int = K) -> np.ndarray:
    """NDCG@``k`` of each query under the blend :func:`blend_scores` makes.

    Parameters
    ----------
    prepared : Prepared
        The scored task.
    weights : np.ndarray
        One weighting, as :func:`blend_scores` takes it (``(parts,)`` or the hybrid's 4-d
        table), or a grid of them, the grid's points first (``(points, parts)`` or
        ``(points, user buckets, item cells, known, parts)``).
    k : int
        The cut-off.

    Returns
    -------
    np.ndarray
        ``(queries,)`` for one weighting, ``(points, queries)`` for a grid; NaN for a query
        with no relevant item.
    """
    return _measure(prepared, weights, lambda found, n: ndcg_of_hits(found, n, k), k)


def blend_recall(prepared: Prepared, weights: np.ndarray, k: int = 10) -> np.ndarray:
    """Recall@``k`` of each query under the blend :func:`blend_scores` makes: the share of its
    relevant items (those outside its candidates too) in its top ``k``. ``weights`` as
    :func:`blend_ndcg` takes them; the result is shaped as there, NaN for a query with no
    relevant item."""
    return _measure(prepared, weights, recall_of_hits, k)


def _measure(
    prepared: Prepared,
    weights: np.ndarray,
    of_hits: Callable[[np.ndarray, np.ndarray], np.ndarray],
    k: int,
) -> np.ndarray:
    """``of_hits`` (each query's value from its top-``k`` hit matrix and its number of
    relevant items) under one weighting, or under each point of a grid."""
    table = np.asarray(weights, dtype=np.float32)
    blender = _Blender(prepared)
    if table.ndim in (1, 4):
        return blender.measure(_per_query(prepared, table), of_hits, k)
    if table.ndim not in (2, 5):
        raise ValueError(f"weights must have 1, 2, 4 or 5 dimensions, got shape {table.shape}")
    out = np.zeros((len(table), len(prepared.n_relevant)))
    for g, point in enumerate(table):
        out[g] = blender.measure(_per_query(prepared, point), of_hits, k)
        blender.next_point()
    return out


def _per_query(prepared: Prepared, weights: np.ndarray) -> np.ndarray:
    """``weights`` as float32 ``(queries, item cells, parts)`` (a vector: alike everywhere)."""
    table = np.asarray(weights, dtype=np.float32)
    n_parts = len(prepared.parts)
    if table.shape[-1:] != (n_parts,) or table.ndim not in (1, 4):
        raise ValueError(
            f"weights for {n_parts} parts must be (parts,) or (buckets, cells, known, parts), "
            f"got shape {table.shape}"
        )
    if table.ndim == 1:
        return np.broadcast_to(table, (len(prepared.n_relevant), 2, n_parts))
    out: np.ndarray = table[prepared.buckets, :, prepared.known]
    return out


class _Blender:
    """Blends one :class:`Prepared` under weighting after weighting. Each item cell's weighted
    sum of the parts is kept from one weighting to the next, so a grid that varies one cell's
    weights sums the other cell's parts once."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.warm = prepared.cells == 1
        self.some_warm, self.all_warm = bool(self.warm.any()), bool(self.warm.all())
        self.last: dict[bytes, np.ndarray] = {}
        self.now: dict[bytes, np.ndarray] = {}

    def measure(
        self,
        per_query: np.ndarray,
        of_hits: Callable[[np.ndarray, np.ndarray], np.ndarray],
        k: int,
    ) -> np.ndarray:
        prep = self.prepared
        return of_hits(top_hits(self.scores(per_query), prep.relevant, k), prep.n_relevant)

    def scores(self, per_query: np.ndarray) -> np.ndarray:
        """The blend, each candidate weighted by its query's ``(cells, parts)`` weights."""
        cold, warm = per_query[:, 0], per_query[:, 1]
        if self.all_warm or np.array_equal(cold, warm):
            total = self.weighted(warm)
        elif not self.some_warm:
            total = self.weighted(cold)
        else:
            total = np.where(self.warm, self.weighted(warm), self.weighted(cold))
        blend: np.ndarray = total + self.prepared.ties
        blend[self.prepared.pad] = -np.inf
        return blend

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        """``sum_j weights[:, j] * parts[j]``, each query row by its own weights."""
        key = weights.tobytes()
        found = self.now.get(key)
        if found is None:
            found = self.last.get(key)
        if found is None:
            found = np.asarray(
                sum(weights[:, j, None] * p for j, p in enumerate(self.prepared.parts))
            )
        self.now[key] = found
        return found

    def next_point(self) -> None:
        """Forget the sums no longer needed: those the last weighting did not use."""
        self.last, self.now = self.now, {}


def both_shapes(prepared: Sequence[Prepared], known: int) -> bool:
    """Whether ``prepared``'s queries of users of kind ``known`` hold enough of each shape
    (random likes held out, the latest ones) to be judged by shape."""
    latest = np.concatenate([p.latest[(p.n_relevant > 0) & (p.known == known)] for p in prepared])
    return holds_both_shapes(latest)
