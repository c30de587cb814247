"""What people like next: item-to-item transitions learned from the order of their likes.

Users like items in runs (an evening of rating films, a shopping trip), so what someone likes
next follows their latest likes more closely than their whole history says. On the first half of
the ml-1m replay stream (validation: the 2,000 positives before the replay's evaluated ones),
"what followed your latest likes" found the next item in the top 20 for 0.31 of the events
against 0.10 for popularity (ml-100k: 0.21 against 0.13); ItemKNN, which ignores order, cannot
see it.

:class:`TransitionRecommender` counts, over every user's positives in time order, how often item
*b* came within ``window`` steps after item *a* (weight ``1/d`` at distance *d*), and scores an
item by those counts from the user's ``window`` most recent likes (weight ``1/d`` for the *d*-th
most recent). Data without timestamps has no order to learn from: the counts stay empty and the
part scores every item 0 for everyone (a blend gives it no say). Otherwise a user with no liked
item the model knows gets popularity, and items nobody liked go below the others, as in every
collaborative model here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from coldbrew.data.schema import Dataset, has_timestamps
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.cfbase import (
    CFRecommender,
    KeptMatrix,
    csr_arrays,
    csr_from_arrays,
    grown_square,
)
from coldbrew.models.reasons import Reason, strongest_link


def harmonic_weights(n: int) -> np.ndarray:
    """``1, 1/2, ..., 1/n``: the weight of the *d*-th step before (or after)."""
    return (1.0 / np.arange(1, n + 1)).astype(np.float32)


class TransitionRecommender(CFRecommender):
    """Scores what followed the user's latest likes in other users' time-ordered histories.

    Parameters
    ----------
    window
        How many steps after an item count as "came next" when learning, and how many of the
        user's most recent likes are read when scoring (five: on the replay streams' validation
        half, wider windows found more, 1 → 3 → 5 steps: ml-1m 0.23 → 0.29 → 0.31 hit@20).
    """

    kind = "transitions"

    def __init__(self, window: int = 5) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.window = window
        self.transitions = sp.csr_matrix((0, 0), dtype=np.float32)
        self._learned = KeptMatrix()

    @property
    def learned_from(self) -> str:
        """The :func:`history_key` of the histories :attr:`transitions` were counted from."""
        return self._learned.key

    def start_from(self, previous: Recommender) -> None:
        """Keep ``previous``'s counts for the next fit if that fit's histories are the very
        ones they were counted from (:func:`history_key`: the same items, users and likes in
        the same order) with the same window; otherwise they are counted again."""
        if isinstance(previous, TransitionRecommender) and previous.window == self.window:
            self._learned.offer(previous._learned, previous.transitions)

    def _fit_cf(self, matrix: sp.csr_matrix) -> None:
        n = len(self.item_ids)
        self.transitions = sp.csr_matrix((n, n), dtype=np.float32)

    def _fit(self, dataset: Dataset) -> None:
        super()._fit(dataset)
        self._learn_transitions(dataset)
        if not self.transitions.nnz:  # no order learned: every item scores 0 for everyone
            timed = has_timestamps(dataset.positives())
            self.silent_reason = self.silent_reason or (
                "no user liked two items in time order" if timed else "no timestamps"
            )

    def _learn_transitions(self, dataset: Dataset) -> None:
        n = len(self.item_ids)
        if not has_timestamps(dataset.positives()):
            self._learned.take("", n)
            return
        kept = self._learned.take(history_key(self._history, list(self.item_ids)), n)
        if kept is not None:
            self.transitions = kept
            return
        weights = harmonic_weights(self.window)
        sources, targets, values = [], [], []
        for items in self._history.values():  # oldest first
            rows = self.item_ids.rows(items, skip_unknown=True)
            for d in range(1, min(self.window, len(rows) - 1) + 1):
                sources.append(rows[:-d])
                targets.append(rows[d:])
                values.append(np.full(len(rows) - d, weights[d - 1], dtype=np.float32))
        if not sources:
            return
        src, dst = np.concatenate(sources), np.concatenate(targets)
        keep = src != dst  # an item liked twice does not follow itself
        counts = sp.csr_matrix(
            (np.concatenate(values)[keep], (src[keep], dst[keep])), shape=(n, n), dtype=np.float32
        )
        counts.sum_duplicates()
        self.transitions = counts

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        if not self.transitions.nnz:  # no order learned: nothing to say, for anyone
            return np.zeros((len(queries), len(rows)), dtype=np.float32)
        return super()._score_subset(queries, rows)

    def propose(self, query: UserQuery, n: int) -> np.ndarray:
        if not self.transitions.nnz:
            return np.zeros(0, dtype=np.int64)
        return super().propose(query, n)

    def recent_rows(self, query: UserQuery) -> np.ndarray:
        """Rows of the user's ``window`` most recent known likes, the latest first."""
        return self._liked_rows(query)[::-1][: self.window]

    def _score_known(self, queries: Sequence[UserQuery]) -> np.ndarray:
        recent = [self.recent_rows(query) for query in queries]
        picked = [(rows, harmonic_weights(len(rows))) for rows in recent]
        return self._weighted_rows(self.transitions, picked)

    def _grow_items(self, n: int) -> None:
        self.transitions = grown_square(self.transitions, len(self.item_ids))

    def _get_state(self) -> dict[str, np.ndarray]:
        learned = self._learned.state()
        return {**super()._get_state(), **csr_arrays("next", self.transitions), **learned}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self.transitions = csr_from_arrays(arrays, "next", len(self._counts))
        self._learned.set_state(arrays)

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """The quotable recent like after which ``row`` came most (weighted as scored)."""
        if not query.liked:
            return Reason()
        recent = self.recent_rows(quotable)
        weights = harmonic_weights(len(recent))
        return strongest_link(self.item_ids, self.transitions, recent, row, "went_on", weights)


def history_key(history: Mapping[str, Sequence[str]], items: Sequence[str]) -> str:
    """A digest of the item ids and of each user's likes in order (what the counts read)."""
    digest = hashlib.sha256("\x00".join(items).encode() + b"\x01")
    for user, liked in history.items():
        digest.update(user.encode() + b"\x02" + "\x00".join(liked).encode() + b"\x01")
    return digest.hexdigest()
