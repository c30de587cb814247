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
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import scipy.linalg
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


COUNTED_WINDOW = 5
"""The counts' default window, which :class:`LinearTransitionRecommender` also uses when its
catalogue is too large to solve."""


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

    def __init__(self, window: int = COUNTED_WINDOW) -> None:
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

    @property
    def reads(self) -> int:
        """How many steps the model learns from and how many latest likes it reads: ``window``."""
        return self.window

    def start_from(self, previous: Recommender) -> None:
        """Keep ``previous``'s counts for the next fit if that fit's histories are the very
        ones they were counted from (:func:`history_key`: the same items, users and likes in
        the same order) with the same window; otherwise they are counted again."""
        same = type(previous) is type(self) and previous.get_params() == self.get_params()
        if same and isinstance(previous, TransitionRecommender):
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
        steps = ordered_steps(self._history, self.item_ids.rows, self.reads)
        if steps is not None:
            self.transitions = self._learn(steps, n)

    def _learn(self, steps: OrderedSteps, n: int) -> sp.csr_matrix:
        """The counts: how often each item came ``d`` steps after another, weighted ``1/d``."""
        keep = steps.source != steps.target  # an item liked twice does not follow itself
        counts = sp.csr_matrix(
            (steps.weight[keep], (steps.source[keep], steps.target[keep])),
            shape=(n, n),
            dtype=np.float32,
        )
        counts.sum_duplicates()
        return counts

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
        return self._liked_rows(query)[::-1][: self.reads]

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


class OrderedSteps(NamedTuple):
    """Every pair of a user's likes at most ``window`` steps apart, in time order: the earlier
    item's row (``source``), the later one's (``target``), ``1/d`` at distance ``d``
    (``weight``) and which of the later likes it is, counted over all users (``step``)."""

    source: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    step: np.ndarray


def ordered_steps(
    history: Mapping[str, Sequence[str]], rows_of: Callable[..., np.ndarray], window: int
) -> OrderedSteps | None:
    """The :class:`OrderedSteps` of ``history`` (each user's likes oldest first; ``rows_of``
    maps item ids to rows, skipping unknown ones), or None when no user liked two items."""
    weights = harmonic_weights(window)
    parts: list[tuple[np.ndarray, ...]] = []
    first = 0  # the step number of this user's second like
    for items in history.values():
        rows = rows_of(items, skip_unknown=True)
        for d in range(1, min(window, len(rows) - 1) + 1):
            later = np.arange(first + d - 1, first + len(rows) - 1, dtype=np.int64)
            weight = np.full(len(rows) - d, weights[d - 1], dtype=np.float32)
            parts.append((rows[:-d], rows[d:], weight, later))
        first += max(len(rows) - 1, 0)
    if not parts:
        return None
    source, target, weight, step = (np.concatenate(column) for column in zip(*parts, strict=True))
    return OrderedSteps(source, target, weight, step)


class LinearTransitionRecommender(TransitionRecommender):
    """What comes next, learned as one ridge regression instead of counted.

    Each like a user made after their first is a target; its source is their ``window`` likes
    before it, the ``d``-th latest weighted ``1/d`` (the very vector the model scores a user
    by). The item × item matrix ``B`` that maps sources to targets minimises
    ``‖T − S·B‖² + l2·‖B‖²`` in closed form, ``B = (SᵀS + l2·I)⁻¹ SᵀT``, as SLIT does (Choi et
    al., *Session-aware Linear Item-Item Models for Session-based Recommendation*, WWW 2021):
    where the counts ``SᵀT`` credit every item before a like, the solve shares the credit among
    them, and can learn that one item does *not* follow another (negative entries). Each row
    keeps its ``keep`` largest entries by magnitude, so the part stores and scores a sparse
    matrix as :class:`TransitionRecommender` does.

    ``B`` is kept times ``l2``, ``(SᵀS/l2 + I)⁻¹ SᵀT``: the counts deflated by how often the
    items before a like come together, which tends to the counts themselves as ``l2`` grows.
    The ranking is the regression's; the scale is the counts', which the items nobody liked
    are placed below by a fixed margin (:func:`~.cfbase.rank_below`) and a blend standardises:
    at the regression's own scale (top scores ~0.04 on ml-100k) that margin was most of a
    row's spread, and the hybrid's weight search saw the part at a tenth of its strength.

    On the next-item validation targets of the four datasets with timestamps (the
    second-latest like of each user; ``benchmarks/linear_transitions.py``) it found 3-11% more
    than the counts; the bench's test figures are in benchmarks/README.md.

    Parameters
    ----------
    window
        How many earlier likes make a like's source, and how many of the user's latest likes
        are read when scoring.
    l2
        The ridge's weight; as it grows, ``B`` tends to the counts scaled down.
    keep
        The entries kept per item's row, largest in magnitude first.
    max_items
        The solve holds dense item × item matrices (float32: 400 MB each at 10,000 items);
        above this many items the model is :class:`TransitionRecommender` with its default
        window (counts over five steps, the five latest likes read), and says so
        (:attr:`learned_as`).
    """

    kind = "linear_transitions"

    def __init__(
        self, window: int = 20, l2: float = 300.0, keep: int = 500, max_items: int = 10_000
    ) -> None:
        super().__init__(window=window)
        if l2 <= 0:
            raise ValueError(f"l2 must be positive, got {l2}")
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self.l2, self.keep, self.max_items = float(l2), keep, max_items
        self.learned_as = "ridge"
        """``"ridge"``, or ``"counts"`` when the catalogue had more than ``max_items`` items."""

    @property
    def reads(self) -> int:
        """``window``; when the catalogue was too large to solve, the counts' own window
        (:class:`TransitionRecommender`'s default, 5), so the model is exactly the counts."""
        return COUNTED_WINDOW if self.learned_as == "counts" else self.window

    def _learn_transitions(self, dataset: Dataset) -> None:
        self.learned_as = "counts" if len(self.item_ids) > self.max_items else "ridge"
        super()._learn_transitions(dataset)

    def _learn(self, steps: OrderedSteps, n: int) -> sp.csr_matrix:
        if self.learned_as == "counts":
            return super()._learn(steps, n)
        n_steps = int(steps.step.max()) + 1
        sources = sp.csr_matrix(
            (steps.weight, (steps.step, steps.source)), shape=(n_steps, n), dtype=np.float32
        )
        targets = sp.csr_matrix(
            (np.ones(n_steps, dtype=np.float32), (np.arange(n_steps), target_of(steps, n_steps))),
            shape=(n_steps, n),
            dtype=np.float32,
        )
        gram = (sources.T @ sources).toarray()
        gram[np.diag_indices(n)] += self.l2
        links = (sources.T @ targets).toarray()
        solved = scipy.linalg.solve(
            gram, links, assume_a="pos", overwrite_a=True, overwrite_b=True, check_finite=False
        )
        del gram, links
        solved = solved if solved.flags.writeable else solved.copy()
        solved *= self.l2  # the counts' units (below)
        np.fill_diagonal(solved, 0.0)  # an item liked twice does not follow itself
        return largest_per_row(solved, self.keep)

    def _score_known(self, queries: Sequence[UserQuery]) -> np.ndarray:
        """The regression's prediction, with what it predicts will *not* come next (below 0)
        scored as what nothing links to (0): the ranking above 0 is the prediction's, and a
        row's spread stays the counts' kind, a few high scores over many zeros."""
        scores: np.ndarray = np.maximum(super()._score_known(queries), 0.0)
        return scores

    def _get_state(self) -> dict[str, np.ndarray]:
        return {**super()._get_state(), "learned_as": np.asarray(self.learned_as, dtype=str)}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self.learned_as = str(arrays["learned_as"])


def target_of(steps: OrderedSteps, n_steps: int) -> np.ndarray:
    """Each step's target row (every pair of a step names it; the nearest is always there)."""
    target = np.zeros(n_steps, dtype=np.int64)
    target[steps.step] = steps.target
    return target


def largest_per_row(matrix: np.ndarray, keep: int, block: int = 1024) -> sp.csr_matrix:
    """``matrix`` (dense, square) as CSR with each row's ``keep`` largest entries by magnitude
    (every nonzero one when a row has fewer), taken ``block`` rows at a time."""
    n = matrix.shape[1]
    parts = []
    for start in range(0, matrix.shape[0], block):
        rows = matrix[start : start + block]
        if keep < n:
            drop = np.argpartition(-np.abs(rows), keep, axis=1)[:, keep:]
            rows = rows.copy()
            np.put_along_axis(rows, drop, 0.0, axis=1)
        parts.append(sp.csr_matrix(rows, dtype=np.float32))
    if not parts:
        return sp.csr_matrix(matrix.shape, dtype=np.float32)
    return sp.vstack(parts, format="csr", dtype=np.float32)


def history_key(history: Mapping[str, Sequence[str]], items: Sequence[str]) -> str:
    """A digest of the item ids and of each user's likes in order (what the counts read)."""
    digest = hashlib.sha256("\x00".join(items).encode() + b"\x01")
    for user, liked in history.items():
        digest.update(user.encode() + b"\x02" + "\x00".join(liked).encode() + b"\x01")
    return digest.hexdigest()
