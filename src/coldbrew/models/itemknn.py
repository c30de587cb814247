"""Item-item cosine KNN on the binary interaction matrix: a user's score for an item sums its
similarities to the items they liked (a few-shot user needs no fitting)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.cfbase import (
    CFRecommender,
    KeptMatrix,
    csr_arrays,
    csr_from_arrays,
    grown_square,
)
from coldbrew.models.reasons import Reason, strongest_link


class ItemKNNRecommender(CFRecommender):
    """Item-item cosine similarity on the binary interaction matrix, top ``neighbors`` kept.

    A user's score for an item is the sum of its similarities to the items they liked
    (``shrinkage`` damps similarities supported by few common users).
    """

    kind = "itemknn"

    def __init__(self, neighbors: int = 100, shrinkage: float = 0.0) -> None:
        super().__init__()
        if neighbors < 1:
            raise ValueError(f"neighbors must be at least 1, got {neighbors}")
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self._learned = KeptMatrix()

    @property
    def learned_from(self) -> str:
        """The :func:`matrix_key` of the interactions :attr:`similarity` was learned from."""
        return self._learned.key

    def start_from(self, previous: Recommender) -> None:
        """Keep ``previous``'s similarities for the next fit if that fit's interactions are the
        very ones they were learned from (:func:`matrix_key`: the same users, items and
        events, so the same rows); otherwise every row is learned again (a new like changes
        its items' norms, and with them nearly every row they co-occur in)."""
        if isinstance(previous, ItemKNNRecommender):
            self._learned.offer(previous._learned, previous.similarity)

    BLOCK = 2048
    """Items whose neighbours are found at a time in :meth:`_fit_cf`."""

    def _fit_cf(self, matrix: sp.csr_matrix) -> None:
        key = matrix_key(matrix, list(self.user_ids), list(self.item_ids))
        kept = self._learned.take(key, len(self.item_ids))
        if kept is not None:
            self.similarity = kept
            return
        users_items = matrix.tocsr().astype(np.float32)
        item_users = users_items.T.tocsr()
        norms = np.sqrt(np.asarray(item_users.multiply(item_users).sum(axis=1)).ravel())
        n = item_users.shape[0]
        blocks = []
        # a block of items at a time: the full item x item co-occurrence of a large catalogue
        # would not fit in memory, one block's does and only its top rows are kept
        for start in range(0, n, self.BLOCK):
            common = (item_users[start : start + self.BLOCK] @ users_items).tocoo()
            rows = common.row + start
            off_diagonal = rows != common.col
            rows, cols = rows[off_diagonal], common.col[off_diagonal]
            denom = norms[rows] * norms[cols] + self.shrinkage
            sims = (common.data[off_diagonal] / np.maximum(denom, 1e-12)).astype(np.float32)
            blocks.append(_top_entries(rows, cols, sims, self.neighbors))
        rows, cols, sims = (np.concatenate(parts) for parts in zip(*blocks, strict=True))
        self.similarity = sp.csr_matrix((sims, (rows, cols)), shape=(n, n), dtype=np.float32)

    def _score_known(self, queries: Sequence[UserQuery]) -> np.ndarray:
        liked = [np.unique(self._liked_rows(query)) for query in queries]  # each counts once
        picked = [(rows, np.ones(len(rows), dtype=np.float32)) for rows in liked]
        return self._weighted_rows(self.similarity, picked)

    def _grow_items(self, n: int) -> None:
        self.similarity = grown_square(self.similarity, len(self.item_ids))

    def _get_state(self) -> dict[str, np.ndarray]:
        learned = self._learned.state()
        return {**super()._get_state(), **csr_arrays("sim", self.similarity), **learned}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self.similarity = csr_from_arrays(arrays, "sim", len(self._counts))
        self._learned.set_state(arrays)

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """The quotable liked item most similar to ``row``."""
        if not query.liked:
            return Reason()
        liked = self.item_ids.rows(quotable.liked, skip_unknown=True)
        return strongest_link(self.item_ids, self.similarity, liked, row, "also_liked")


def _top_entries(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest entries of each row of a sparse matrix given as (row, column, value)
    triples, with no duplicate positions (ties: lower column first)."""
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else rows
    lengths = np.diff(np.r_[starts, len(rows)])
    rank = np.arange(len(rows)) - np.repeat(starts, lengths)
    keep = rank < k
    return rows[keep], cols[keep], values[keep]


def matrix_key(matrix: sp.csr_matrix, users: Sequence[str], items: Sequence[str]) -> str:
    """A digest of a users x items interaction matrix with its row and column ids."""
    csr = matrix.tocsr()
    digest = hashlib.sha256()
    for ids in (users, items):
        digest.update("\x00".join(map(str, ids)).encode() + b"\x01")
    for array in (csr.indptr, csr.indices, csr.data):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()
