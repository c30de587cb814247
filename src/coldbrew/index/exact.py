"""Exact inner-product top-k over item vectors, with incremental add/remove and filters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.data.idmap import IdMap
from coldbrew.store.rows import Int8Rows, empty_rows


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest scores per row, best first (ties: lower index first)."""
    scores = np.atleast_2d(scores)
    n = scores.shape[1]
    k = min(k, n)
    if k <= 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(n), (scores.shape[0], 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


class ExactIndex:
    """An :class:`~coldbrew.index.base.Index` whose search is a matrix product (numpy, exact).

    The vectors sit in a growable matrix; there is no graph, so :meth:`add_all` is :meth:`add`,
    :meth:`save_graph` does nothing and :meth:`wants_graph` is ``False``. A search restricted to
    ``allowed`` ids scores those rows only.
    """

    storage: Any = np.float32
    """The matrix's element type (a compact index keeps float16 or int8 rows,
    :class:`~coldbrew.store.rows.Int8Rows`; scores are float32 always)."""
    SCAN_BLOCK = 65_536
    """Rows cast to float32 at a time when a float16 matrix is scanned."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.ids = IdMap()
        self._vectors = empty_rows(0, dim, self.storage)
        self._active = np.zeros(0, dtype=bool)

    # a scan of this many rows takes a few milliseconds at most (384 dimensions, one core)
    QUICK_SCAN_ROWS = 20_000

    @property
    def quick(self) -> bool:
        """Whether a search without ``allowed`` takes a few milliseconds at most."""
        return len(self) <= self.QUICK_SCAN_ROWS

    def __len__(self) -> int:
        return int(self._active.sum())

    @property
    def vectors(self) -> np.ndarray:
        """All rows, including removed ones (check :attr:`active`); a view (int8 rows:
        :class:`~coldbrew.store.rows.Int8Rows`)."""
        rows: np.ndarray = self._vectors[: len(self.ids)]
        return rows

    @property
    def active(self) -> np.ndarray:
        return self._active[: len(self.ids)]

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        if not isinstance(vectors, Int8Rows):  # int8 rows are copied as they are
            vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(
                f"expected vectors of shape ({len(ids)}, {self.dim}), got {vectors.shape}"
            )
        rows = self.ids.add(ids)
        needed = len(self.ids)
        if needed > len(self._vectors):
            # a quarter spare, at most 65,536 rows: a bulk load followed by a few upserts does
            # not copy the matrix, and a million rows do not carry a quarter of a million unused
            capacity = needed + min(max(needed // 4, 16), 65_536)
            grown = empty_rows(capacity, self.dim, self.storage)
            grown[: len(self._vectors)] = self._vectors
            active = np.zeros(capacity, dtype=bool)
            active[: len(self._active)] = self._active
            self._vectors, self._active = grown, active
        self._vectors[rows] = vectors
        self._active[rows] = True

    def add_all(
        self, ids: Sequence[str], vectors: np.ndarray, graph_path: str | Path | None
    ) -> bool:
        self.add(ids, vectors)
        return False

    def save_graph(self, path: str | Path) -> None:
        return None

    def wants_graph(self, n_items: int) -> bool:
        return False

    def remove(self, ids: Iterable[str]) -> None:
        rows = self.ids.rows(ids, skip_unknown=True)
        self._active[rows] = False

    def contains(self, item_id: str) -> bool:
        return item_id in self.ids and bool(self._active[self.ids.row(item_id)])

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude: Sequence[Iterable[str]] | None = None,
        allowed: Iterable[str] | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if allowed is None:
            rows = None
            scores = self.dot(queries, None)
            scores[:, ~self.active] = -np.inf
        else:
            rows = np.unique(self.ids.rows(allowed, skip_unknown=True))
            rows = rows[self.active[rows]]
            scores = self.dot(queries, rows)
        if exclude is not None:
            for q, ids in enumerate(exclude):
                banned = self.ids.rows(ids, skip_unknown=True)
                if rows is not None:
                    banned = np.searchsorted(rows, banned[np.isin(banned, rows)])
                scores[q, banned] = -np.inf
        cols = top_k(scores, k)
        top = np.take_along_axis(scores, cols, axis=1)
        found = cols if rows is None else rows[cols]
        out_ids = [
            [self.ids.id(int(c)) for c, s in zip(row, srow) if np.isfinite(s)]
            for row, srow in zip(found, top)
        ]
        return out_ids, top

    def dot(self, queries: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """float32 inner products of ``queries`` with the vectors of ``rows`` (``None``: every
        row), a block at a time when the matrix is float16 (numpy has no fast half product)."""
        if self.storage == np.float32:
            matrix = self.vectors if rows is None else self._vectors[rows]
            scores: np.ndarray = queries @ matrix.T
            return scores
        rows = np.arange(len(self.ids)) if rows is None else rows
        out = np.empty((len(queries), len(rows)), dtype=np.float32)
        for start in range(0, len(rows), self.SCAN_BLOCK):
            block = self._vectors[rows[start : start + self.SCAN_BLOCK]].astype(np.float32)
            out[:, start : start + len(block)] = queries @ block.T
        return out

    def row_vectors(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The float32 vectors of ``rows`` (a copy; what callers do arithmetic with)."""
        out: np.ndarray = self._vectors[np.asarray(rows, dtype=np.int64)].astype(np.float32)
        return out
