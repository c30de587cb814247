"""The :class:`Index` protocol: what every nearest-neighbour index offers its callers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from coldbrew.data.idmap import IdMap


@runtime_checkable
class Index(Protocol):
    """Item vectors under string ids, searched by inner product; grows and shrinks in place.

    Implemented by :class:`~coldbrew.index.exact.ExactIndex` (a numpy scan),
    :class:`~coldbrew.index.hnsw.HNSWIndex` (a faiss HNSW graph above a size, a scan below) and
    :class:`~coldbrew.index.ivfpq.IVFPQIndex` (float16 or int8 rows, faiss IVF-PQ above a size).
    Callers never need to know which one they hold: the graph-only steps (:meth:`add_all` reusing
    a saved graph, :meth:`save_graph`, :meth:`wants_graph`) are no-ops or ``False`` on an index
    without a graph.

    Every row ever added keeps its place: removing an item deactivates its row, re-adding an id
    overwrites its vector and reactivates it. Scores are exact inner products of the stored rows
    (float32, or float16 in a compact index), computed in float32.

    Attributes
    ----------
    dim : int
        Length of every vector.
    ids : IdMap
        External id <-> row, for every id ever added (removed ones included); rows index
        :attr:`vectors`.
    """

    dim: int
    ids: IdMap

    @property
    def vectors(self) -> np.ndarray:
        """Array of shape ``(len(ids), dim)``: every row, removed ones included; float32, or
        float16 or :class:`~coldbrew.store.rows.Int8Rows` in a compact index (use
        :meth:`row_vectors` for arithmetic)."""
        ...

    def row_vectors(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The float32 vectors of ``rows`` (a copy)."""
        ...

    @property
    def quick(self) -> bool:
        """Whether a search without ``allowed`` takes a few milliseconds at most."""
        ...

    def __len__(self) -> int:
        """Number of active (added and not removed) items."""
        ...

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add items, or overwrite (and reactivate) the vectors of ids already known.

        Parameters
        ----------
        ids : sequence of str
            One id per row of ``vectors``.
        vectors : np.ndarray
            Shape ``(len(ids), dim)``; stored as float32.

        Raises
        ------
        ValueError
            If ``vectors`` does not have shape ``(len(ids), dim)``.
        """
        ...

    def add_all(
        self, ids: Sequence[str], vectors: np.ndarray, graph_path: str | Path | None
    ) -> bool:
        """Fill an empty index in one go (start-up), as :meth:`add` would.

        Parameters
        ----------
        ids, vectors
            As for :meth:`add`.
        graph_path : str, Path or None
            Where :meth:`save_graph` may have saved a search graph for these very ids and vectors.
            An index with a graph reuses it when it matches and builds its graph once otherwise;
            one without a graph ignores it.

        Returns
        -------
        bool
            Whether a saved graph was reused (always ``False`` without a graph: then the caller
            may :meth:`save_graph` what was built).
        """
        ...

    def save_graph(self, path: str | Path) -> None:
        """Save the search graph at ``path`` for a fast restart; nothing without a graph."""
        ...

    def wants_graph(self, n_items: int) -> bool:
        """Whether, at ``n_items`` items, this index searches through a graph worth saving."""
        ...

    def remove(self, ids: Iterable[str]) -> None:
        """Deactivate the rows of ``ids``; unknown ids are skipped."""
        ...

    def contains(self, item_id: str) -> bool:
        """Whether ``item_id`` is active."""
        ...

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude: Sequence[Iterable[str]] | None = None,
        allowed: Iterable[str] | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        """Top-``k`` active items per query row, best first.

        Parameters
        ----------
        queries : np.ndarray
            Shape ``(n, dim)``, or ``(dim,)`` for one query.
        k : int
            Items wanted per query.
        exclude : sequence of iterables of str, optional
            One collection of ids per query row that this row must not return.
        allowed : iterable of str, optional
            Restrict every query to these ids (unknown ones are skipped).

        Returns
        -------
        ids : list of list of str
            Per query, at most ``k`` ids: fewer when fewer items are eligible.
        scores : np.ndarray
            Shape ``(n, m)`` with ``m <= k`` (a scan gives at most one column per row it holds):
            the ids' inner products with the query, best first, padded with ``-inf`` after a
            row's ids.
        """
        ...
