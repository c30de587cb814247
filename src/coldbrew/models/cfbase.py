"""What the collaborative-filtering models share: the interaction matrix, the popularity
fallback, the ridge fold-in of a new user, and :class:`CFRecommender`, their base class.

The models themselves are in :mod:`coldbrew.models.factors` (ALS, BPR) and
:mod:`coldbrew.models.itemknn`; :mod:`coldbrew.models.cf` names them all.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from coldbrew.data.frames import pd
from coldbrew.data.idmap import IdMap
from coldbrew.data.schema import ITEM_ID, USER_ID, Dataset
from coldbrew.models.base import NO_INTERACTIONS, Recommender, UserQuery
from coldbrew.models.baselines import _id_hashes


def interaction_matrix(dataset: Dataset, item_ids: IdMap) -> tuple[sp.csr_matrix, IdMap]:
    """Binary users x items CSR of the positive interactions, and the map of its user rows."""
    positives = dataset.positives()
    # looked up a column at a time: per event in Python, each column cost 0.3 CPU s on ml-1m
    # (its strings read one by one from the Arrow array), in every CF part's fit (issue 29)
    cols = pd.Index(item_ids.ids(), dtype=object).get_indexer(positives[ITEM_ID].to_numpy(object))
    known = cols >= 0  # events on items of the catalogue only
    rows, names = pd.factorize(positives[USER_ID].astype(str).to_numpy(object)[known], sort=True)
    users = IdMap(names.tolist())
    cols = cols[known]
    data = np.ones(len(rows), dtype=np.float32)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(len(users), len(item_ids)))
    matrix.data[:] = 1.0  # duplicates count once
    return matrix, users


def popularity_scores(counts: np.ndarray, item_ids: Sequence[str]) -> np.ndarray:
    """Training counts with ties broken by a hash of the item id (as most-popular does), so the
    fallback never leaks catalogue order."""
    return np.asarray(counts, dtype=np.float32) + (0.5 * _id_hashes(item_ids)).astype(np.float32)


def rank_below(scores: np.ndarray, mask: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Move the ``mask`` columns of every row below its other columns, ordered by ``fallback``."""
    if not mask.any():
        return scores
    order = np.argsort(np.argsort(fallback[mask], kind="stable"), kind="stable")
    fraction = (order + 1) / (len(order) + 1)  # in (0, 1), higher for more popular
    known = scores[:, ~mask]
    floor = known.min(axis=1, keepdims=True) if known.shape[1] else np.zeros((len(scores), 1))
    scores[:, mask] = floor - 2.0 + fraction[None, :]
    return scores


def ridge_fold_in(
    item_factors: np.ndarray,
    liked_rows: np.ndarray,
    alpha: float,
    regularization: float,
    prior: np.ndarray | None = None,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """The user vector ``u`` minimising ``sum_i c_i (p_i - u.y_i)^2 + reg |u - prior|^2``.

    ``p_i = 1`` with confidence ``c_i = alpha`` for the liked rows, ``p_i = 0, c_i = 1`` for every
    other item (ALS's implicit-feedback loss, one user at a time). No liked rows: the prior (or
    zero). ``gram`` is ``Y^T Y`` when the caller has it already (it is the same for every user).
    """
    width = item_factors.shape[1]
    start = np.zeros(width) if prior is None else np.asarray(prior, dtype=np.float64)
    if len(liked_rows) == 0:
        return start.astype(np.float32)
    # only the liked rows are needed in float64 when the Gram matrix is given: no full copy
    liked = np.asarray(item_factors[liked_rows], dtype=np.float64)
    if gram is None:
        y = np.asarray(item_factors, dtype=np.float64)
        gram = y.T @ y
    gram = gram + (alpha - 1.0) * liked.T @ liked
    target = alpha * liked.sum(axis=0) + regularization * start
    gram += regularization * np.eye(width)
    return np.linalg.solve(gram, target).astype(np.float32)


class CFRecommender(Recommender):
    """Shared behaviour of the interaction-only models: popularity fallback and growth.

    Subclasses implement :meth:`_fit_cf` and :meth:`_score_known` (scores for queries that the
    model can answer, given their known liked rows, of the items with signal only: the others
    are placed below them by popularity, whatever the model would say of them).
    """

    def __init__(self) -> None:
        super().__init__()
        self.user_ids = IdMap()
        self._counts = np.zeros(0, dtype=np.float32)
        self._pop_cache = np.zeros(0, dtype=np.float32)
        self._below: Signal | None = None

    # ---- fallback -----------------------------------------------------------------------
    @property
    def item_has_signal(self) -> np.ndarray:
        """Boolean per item row: did the item have a training interaction?"""
        return self._counts > 0

    def _liked_rows(self, query: UserQuery) -> np.ndarray:
        rows = self.item_ids.rows(query.liked, skip_unknown=True)
        known: np.ndarray = rows[self._signal().position[rows] >= 0]
        return known

    def is_fallback(self, query: UserQuery) -> bool:
        """True when ``query`` gets the popularity ranking (no trained vector, nothing liked)."""
        resolved = self.resolve(query)
        if resolved.user_id is not None and str(resolved.user_id) in self.user_ids:
            return False
        return len(self._liked_rows(resolved)) == 0

    def _popularity_row(self) -> np.ndarray:
        if len(self._pop_cache) != len(self._counts):
            self._pop_cache = popularity_scores(self._counts, self.item_ids.ids())
        return self._pop_cache

    # ---- Recommender hooks --------------------------------------------------------------
    def _fit(self, dataset: Dataset) -> None:
        matrix, self.user_ids = interaction_matrix(dataset, self.item_ids)
        self._counts = np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel()
        self._pop_cache = np.zeros(0, dtype=np.float32)  # a refit must not keep the old ranking
        self._below = None
        if not matrix.nnz:
            self.silent_reason = NO_INTERACTIONS
        self._fit_cf(matrix)

    def _fit_cf(self, matrix: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _score_known(self, queries: Sequence[UserQuery]) -> np.ndarray:
        """Scores of the items with signal (:meth:`_signal`'s rows), ``(queries, rows)``."""
        raise NotImplementedError

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        return self._score_subset(queries, np.arange(len(self.item_ids)))

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        out = np.tile(self._popularity_row()[rows], (len(queries), 1))
        answerable = [q for q, query in enumerate(queries) if not self.is_fallback(query)]
        if answerable:
            scores = self._known_scores([queries[q] for q in answerable])
            out[answerable] = self._ranked_below(scores, rows)
        return out

    def _known_scores(self, queries: Sequence[UserQuery]) -> np.ndarray:
        """:meth:`_score_known` (read only); one query's remembered for the next call, since a
        large catalogue's request asks twice (its proposals, then its candidates' scores)."""
        if len(queries) != 1:
            return self._score_known(queries)
        return self._remembered.get(self._memo_key(queries[0]), lambda: self._score_known(queries))

    def _memo_key(self, query: UserQuery) -> Hashable:
        """What one query's remembered scores depend on, besides the model's state (whose
        changes forget them: a fit, new items, a load)."""
        return (query.user_id, query.liked, len(self._counts))

    def _ranked_below(self, known: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Columns ``rows`` of :func:`rank_below` over every item, given the ``known`` scores
        of the items with signal: those rows' own, the signal-less ones' below the lowest of
        them by popularity."""
        signal = self._signal()
        at = signal.position[rows]
        cold = at < 0
        picked = np.empty((len(known), len(rows)), dtype=np.float32)
        picked[:, ~cold] = known[:, at[~cold]]
        if cold.any():
            floor = (
                known.min(axis=1, keepdims=True) if known.shape[1] else np.zeros((len(known), 1))
            )
            picked[:, cold] = floor - 2.0 + signal.fraction[None, rows[cold]]
        return picked

    def _weighted_rows(
        self, matrix: sp.csr_matrix, picked: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> np.ndarray:
        """Per query, the sum of ``matrix``'s item rows ``rows`` times ``weights`` (``picked``:
        one pair a query), as :meth:`_score_known` gives it: over the items with signal only.

        A query whose rows are distinct (the usual case) adds its rows' stored entries
        straight into its dense row, rows ascending, in float32: what scipy's sparse product
        does, to the bit, without building two sparse matrices a request. Others go through
        that product (repeated rows: scipy sums their weights first)."""
        out = np.zeros((len(picked), len(self._signal().rows)), dtype=np.float32)
        for q, (rows, weights) in enumerate(picked):
            order = np.argsort(rows, kind="stable")
            rows, weights = rows[order], np.asarray(weights, dtype=np.float32)[order]
            if len(np.unique(rows)) == len(rows):
                self._add_rows(out[q], matrix, rows, weights)
            else:
                one = sp.csr_matrix(
                    (weights, (np.zeros(len(rows), dtype=np.int64), rows)),
                    shape=(1, matrix.shape[0]),
                    dtype=np.float32,
                )
                out[q] = self._on_signal(one @ matrix)[0]
        return out

    def _add_rows(
        self, out: np.ndarray, matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray
    ) -> None:
        """Add ``weights[i]`` times ``matrix``'s row ``rows[i]`` into ``out`` (the items with
        signal), in the order given."""
        position = self._signal().position
        for row, weight in zip(rows, weights, strict=True):
            start, end = matrix.indptr[row], matrix.indptr[row + 1]
            at = position[matrix.indices[start:end]]
            kept = at >= 0
            out[at[kept]] += weight * matrix.data[start:end][kept]

    def _on_signal(self, scores: sp.spmatrix) -> np.ndarray:
        """Sparse ``(queries, items)`` scores as :meth:`_score_known` gives them: dense, over
        the items with signal only (an entry of another item is dropped)."""
        coo = sp.coo_matrix(scores)
        at = self._signal().position[coo.col]
        kept = at >= 0
        out = np.zeros((scores.shape[0], len(self._signal().rows)), dtype=np.float32)
        out[coo.row[kept], at[kept]] = coo.data[kept]
        return out

    def _signal(self) -> Signal:
        """The items with signal and each signal-less item's place below them, computed once
        per model state, not at every request."""
        if self._below is None or len(self._below.position) != len(self._counts):
            self._below = Signal.of(self.item_has_signal, self._popularity_row())
        return self._below

    def propose(self, query: UserQuery, n: int) -> np.ndarray:
        """The ``n`` most popular items for a user CF cannot place, else its exact top ``n``."""
        resolved = self.resolve(query)
        if self.is_fallback(resolved):
            scores = self._popularity_row()
            return _top(np.where(self._active & self.item_has_signal, scores, -np.inf), n)
        rows = self._signal().rows
        scores = self._known_scores([resolved])[0]
        found: np.ndarray = rows[_top(np.where(self._active[rows], scores, -np.inf), n)]
        return found

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        grow = len(self.item_ids) - len(self._counts)
        if grow > 0:
            self._counts = np.concatenate([self._counts, np.zeros(grow, dtype=np.float32)])
            self._grow_items(grow)

    def _grow_items(self, n: int) -> None:
        return None

    def _forget_user(self, user_id: str) -> None:
        if user_id in self.user_ids:
            self.user_ids = IdMap([u for u in self.user_ids if u != user_id])

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"counts": self._counts, "user_ids": self.user_ids.to_array()}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._counts = arrays["counts"].astype(np.float32)
        self.user_ids = IdMap(arrays["user_ids"].tolist())
        self._below = None
        self._remembered.forget()


class Signal(NamedTuple):
    """Which items a CF model has signal for (training interactions), and where it puts the
    others (:func:`rank_below`)."""

    rows: np.ndarray
    """The item rows with signal, ascending."""
    position: np.ndarray
    """Each item row's position in :attr:`rows`; -1 for items without signal."""
    fraction: np.ndarray
    """Each signal-less item's place below the others, in (0, 1), higher for more popular."""

    @classmethod
    def of(cls, known: np.ndarray, popularity: np.ndarray) -> Signal:
        """From each item's ``known`` flag and its ``popularity`` (the fallback order)."""
        order = np.argsort(np.argsort(popularity[~known], kind="stable"), kind="stable")
        fraction = np.zeros(len(known))
        fraction[~known] = (order + 1) / (len(order) + 1)
        rows = np.flatnonzero(known)
        position = np.full(len(known), -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        return cls(rows, position, fraction)


class KeptMatrix:
    """Which data an item × item matrix was learned from, and the previous version's matrix
    kept for the next fit when that fit reads the very same data (ItemKNN's similarities,
    the transitions' counts): a refit on unchanged data learns nothing again.

    The owner names its data with a digest (``key``), offers the previous version's matrix
    with :meth:`offer` (from ``start_from``) and asks :meth:`take` in its fit: the matrix
    comes back only if it was learned from that key at the catalogue's size, once.
    """

    def __init__(self) -> None:
        self.key = ""
        """The digest of the data the owner's matrix was learned from ("" when unknown)."""
        self._kept: tuple[str, sp.csr_matrix] | None = None

    def offer(self, previous: KeptMatrix, matrix: sp.csr_matrix) -> None:
        """Keep ``matrix``, learned from ``previous.key``, for the next :meth:`take`."""
        self._kept = (previous.key, matrix) if previous.key else None

    def take(self, key: str, n: int) -> sp.csr_matrix | None:
        """Record ``key`` as what the owner learns from now; the kept ``n`` × ``n`` matrix if
        it was learned from ``key``, else None (learn it again). Forgets the kept one."""
        kept, self._kept, self.key = self._kept, None, key
        if kept is not None and key and kept[0] == key and kept[1].shape == (n, n):
            return kept[1]
        return None

    def state(self) -> dict[str, np.ndarray]:
        """The key as a saved model keeps it (``learned_from``)."""
        return {"learned_from": np.asarray(self.key, dtype=str)}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """The key :meth:`state` saved ("" for a model saved without one); nothing kept."""
        self.key = str(arrays["learned_from"]) if "learned_from" in arrays else ""
        self._kept = None


def grown_square(matrix: sp.csr_matrix, size: int) -> sp.csr_matrix:
    """An item × item ``matrix`` with empty rows and columns for new items, up to ``size``."""
    coo = matrix.tocoo()
    return sp.csr_matrix((coo.data, (coo.row, coo.col)), shape=(size, size), dtype=np.float32)


def csr_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as the arrays a saved model keeps (``<prefix>_data``, ``_indices``,
    ``_indptr``)."""
    return {
        f"{prefix}_data": matrix.data,
        f"{prefix}_indices": matrix.indices,
        f"{prefix}_indptr": matrix.indptr,
    }


def csr_from_arrays(arrays: Mapping[str, np.ndarray], prefix: str, n: int) -> sp.csr_matrix:
    """The ``n`` × ``n`` matrix :func:`csr_arrays` saved under ``prefix``."""
    parts = (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"])
    return sp.csr_matrix(parts, shape=(n, n))


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the ``n`` largest finite scores (unordered)."""
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) <= n:
        return finite
    picked: np.ndarray = finite[np.argpartition(-scores[finite], n - 1)[:n]]
    return picked
