"""Collaborative-filtering baselines: ALS and BPR (``implicit``) and item-item cosine KNN.

They learn from interactions only, so they cannot see a brand-new item's text. Two modes are out
of their reach and fall back to most-popular, visibly:

* a user with no trained vector and no liked item the model knows (a 0-shot user) gets the
  popularity ranking (:meth:`CFRecommender.is_fallback` says so);
* an item with no training interaction (a cold item) has no collaborative signal; it is scored
  below every item that has one, ordered as most-popular orders it (training count, then a hash
  of its id: never catalogue position) (:attr:`CFRecommender.item_has_signal`).

A few-shot user is *folded in*, not retrained: ALS and BPR solve a ridge problem against the
fixed item factors (for ALS the same weighted least squares ``implicit`` solves in training),
ItemKNN sums the similarity rows of the liked items.

``implicit`` is an optional dependency (``pip install coldbrew[cf]``); it is imported in ``fit``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coldbrew.data.idmap import IdMap
from coldbrew.data.schema import ITEM_ID, USER_ID, Dataset
from coldbrew.models.base import NO_INTERACTIONS, Recommender, UserQuery
from coldbrew.models.baselines import _id_hashes
from coldbrew.models.reasons import Reason, closest_liked, strongest_link


def interaction_matrix(dataset: Dataset, item_ids: IdMap) -> tuple[sp.csr_matrix, IdMap]:
    """Binary users x items CSR of the positive interactions, and the map of its user rows."""
    positives = dataset.positives()
    positives = positives[positives[ITEM_ID].isin(set(item_ids))]
    users = IdMap(sorted(positives[USER_ID].astype(str).unique()))
    rows = users.rows(positives[USER_ID].astype(str))
    cols = item_ids.rows(positives[ITEM_ID].astype(str))
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


def _import_implicit() -> Any:
    try:
        import implicit
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("ALS/BPR need implicit: pip install 'coldbrew[cf]'") from exc
    return implicit


class CFRecommender(Recommender):
    """Shared behaviour of the interaction-only models: popularity fallback and growth.

    Subclasses implement :meth:`_fit_cf` and :meth:`_score_known` (scores for queries that the
    model can answer, given their known liked rows).
    """

    def __init__(self) -> None:
        super().__init__()
        self.user_ids = IdMap()
        self._counts = np.zeros(0, dtype=np.float32)
        self._pop_cache = np.zeros(0, dtype=np.float32)
        self._below: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # ---- fallback -----------------------------------------------------------------------
    @property
    def item_has_signal(self) -> np.ndarray:
        """Boolean per item row: did the item have a training interaction?"""
        return self._counts > 0

    def _liked_rows(self, query: UserQuery) -> np.ndarray:
        rows = self.item_ids.rows(query.liked, skip_unknown=True)
        known: np.ndarray = rows[self.item_has_signal[rows]]
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
        raise NotImplementedError

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        return self._score_subset(queries, np.arange(len(self.item_ids)))

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        out = np.tile(self._popularity_row()[rows], (len(queries), 1))
        answerable = [q for q, query in enumerate(queries) if not self.is_fallback(query)]
        if answerable:
            # every item's score: where the signal-less ones go depends on the lowest of them
            scores = self._score_known([queries[q] for q in answerable])
            out[answerable] = self._rank_below(scores)[:, rows]
        return out

    def _rank_below(self, scores: np.ndarray) -> np.ndarray:
        """:func:`rank_below` with the items without signal and their order computed once per
        model state, not at every request."""
        if self._below is None or len(self._below[0]) + len(self._below[2]) != len(self._counts):
            mask = ~self.item_has_signal
            order = np.argsort(
                np.argsort(self._popularity_row()[mask], kind="stable"), kind="stable"
            )
            self._below = (
                np.flatnonzero(mask),
                (order + 1) / (len(order) + 1),
                np.flatnonzero(~mask),
            )
        cold, fraction, known = self._below
        if not len(cold):
            return scores
        floor = (
            scores[:, known].min(axis=1, keepdims=True)
            if len(known)
            else np.zeros((len(scores), 1))
        )
        scores[:, cold] = floor - 2.0 + fraction[None, :]
        return scores

    def _score_known_rows(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        return self._score_known(queries)[:, rows]

    def propose(self, query: UserQuery, n: int) -> np.ndarray:
        """The ``n`` most popular items for a user CF cannot place, else its exact top ``n``."""
        resolved = self.resolve(query)
        scores = (
            self._popularity_row()
            if self.is_fallback(resolved)
            else self._score_known([resolved])[0]
        )
        return _top(np.where(self._active & self.item_has_signal, scores, -np.inf), n)

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


class _FactorModel(CFRecommender):
    """Matrix-factorisation models: scores are ``user_vector @ item_factors.T``."""

    def __init__(self, *, fold_in_alpha: float, fold_in_regularization: float) -> None:
        super().__init__()
        if fold_in_alpha < 1.0:
            raise ValueError(f"fold_in_alpha must be at least 1, got {fold_in_alpha}")
        self.fold_in_alpha = fold_in_alpha
        self.fold_in_regularization = fold_in_regularization
        self.item_factors = np.zeros((0, 0), dtype=np.float32)
        self.user_factors = np.zeros((0, 0), dtype=np.float32)
        self._gram: np.ndarray | None = None  # item_factors' Gram matrix, shared by fold-ins
        self._factors64: np.ndarray | None = None
        self._last: tuple[Any, np.ndarray] | None = None

    def fold_in(self, item_ids: Iterable[str]) -> np.ndarray:
        """A user vector for someone who liked ``item_ids``, against the fixed item factors.

        Solves ``min_u sum_i c_i (p_i - u.y_i)^2 + reg |u|^2`` over all items, with ``p_i = 1``
        and confidence ``c_i = fold_in_alpha`` for the liked items, ``p_i = 0, c_i = 1``
        elsewhere (ALS's implicit-feedback loss). Unknown or signal-less items are ignored; with
        none left the vector is zero.
        """
        rows = self._liked_rows(UserQuery(liked=tuple(item_ids)))
        y = self.item_factors
        if self._gram is None or self._gram.shape[0] != y.shape[1]:
            y64 = y.astype(np.float64)
            self._gram = y64.T @ y64
        vector = ridge_fold_in(
            y, rows, self.fold_in_alpha, self.fold_in_regularization, gram=self._gram
        )
        return vector

    def user_vector(self, query: UserQuery) -> np.ndarray:
        """The trained vector of a known user whose history is the one trained on, else the
        fold-in of the query's liked items (a user who has acted since training is folded in
        from their current history: the step ALS itself uses, no refit needed)."""
        uid = None if query.user_id is None else str(query.user_id)
        if uid is not None and uid in self.user_ids and self._trained_history(uid, query):
            vector: np.ndarray = self.user_factors[self.user_ids.row(uid)]
            return vector
        return self.fold_in(query.liked)

    def _trained_history(self, user_id: str, query: UserQuery) -> bool:
        return list(query.liked) == self._history.get(user_id, [])

    def _forget_user(self, user_id: str) -> None:
        if user_id not in self.user_ids:
            return
        keep = [u for u in self.user_ids if u != user_id]
        rows = self.user_ids.rows(keep)
        self._set_factors(self.item_factors, self.user_factors[rows])
        self.user_ids = IdMap(keep)

    def _score_known(self, queries: Sequence[UserQuery]) -> np.ndarray:
        if len(queries) != 1:
            return self._products(queries, self._factors())
        # one user's scores of every item, remembered for the next call: a large catalogue's
        # request asks twice (its proposals, then where its signal-less items go)
        key = self._memo_key(queries[0])
        memo = self._last
        if memo is None or memo[0] != key:
            memo = self._last = (key, self._products(queries, self._factors()))
        return memo[1].copy()

    def _memo_key(self, query: UserQuery) -> Hashable:
        """What one query's remembered scores depend on (besides the factors, whose setter
        forgets them)."""
        return (query.user_id, query.liked, len(self.item_factors))

    def _score_known_rows(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        return self._products(queries, self._factors()[rows])

    def _factors(self) -> np.ndarray:
        """The item factors in float64, converted once per set of factors, not per request."""
        if self._factors64 is None:
            self._factors64 = self.item_factors.astype(np.float64)
        return self._factors64

    def _products(self, queries: Sequence[UserQuery], factors: np.ndarray) -> np.ndarray:
        # float64 products: a batch scores exactly as the same queries one by one
        users = np.stack([self.user_vector(q) for q in queries]).astype(np.float64)
        return np.asarray(users @ factors.T, dtype=np.float32)

    def _set_factors(self, item_factors: np.ndarray, user_factors: np.ndarray) -> None:
        """Replace the factors; the fold-in Gram matrix is recomputed from them when next needed."""
        self._gram = None
        self._factors64 = None
        self._last = None
        self.item_factors = np.asarray(item_factors, dtype=np.float32)
        self.user_factors = np.asarray(user_factors, dtype=np.float32)

    def _grow_items(self, n: int) -> None:
        width = self.item_factors.shape[1]
        grown = np.vstack([self.item_factors, np.zeros((n, width), np.float32)])
        self._set_factors(grown, self.user_factors)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {
            **super()._get_state(),
            "item_factors": self.item_factors,
            "user_factors": self.user_factors,
        }

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self._set_factors(arrays["item_factors"], arrays["user_factors"])

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """The quotable liked item nearest to ``row`` in factor space."""
        if not query.liked:
            return Reason()
        return closest_liked(self.item_ids, self.item_factors, quotable.liked, row, "also_liked")


class ALSRecommender(_FactorModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky) from ``implicit``; confidence ``alpha``.

    A new user is folded in with exactly the least-squares step ALS uses for a user in training
    (same ``alpha`` and ``regularization``), so a fold-in of a training user's history reproduces
    ``implicit``'s own ``recalculate_user``.
    """

    kind = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        iterations: int = 15,
        alpha: float = 10.0,
        seed: int = 42,
        num_threads: int = 1,
    ) -> None:
        super().__init__(fold_in_alpha=alpha, fold_in_regularization=regularization)
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.seed = seed
        self.num_threads = num_threads
        self._start: ALSRecommender | None = None

    def get_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "alpha": self.alpha,
            "seed": self.seed,
            "num_threads": self.num_threads,
        }

    def start_from(self, previous: Recommender) -> None:
        """Start the next fit from ``previous``'s factors (rows matched by id; new users and
        items drawn as ``implicit`` draws them) and run :data:`WARM_ITERATIONS` sweeps."""
        self._start = None
        if isinstance(previous, ALSRecommender) and previous.factors == self.factors:
            self._start = previous if previous.item_factors.size else None

    def _fit_cf(self, matrix: sp.csr_matrix) -> None:
        _import_implicit()  # the friendly message first, if implicit is missing
        from implicit.cpu.als import AlternatingLeastSquares

        start, self._start = self._start, None
        model = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations if start is None else min(WARM_ITERATIONS, self.iterations),
            random_state=self.seed,
            num_threads=self.num_threads,
        )
        if start is not None:
            rng = np.random.default_rng(self.seed)
            model.user_factors = _started(start.user_factors, start.user_ids, self.user_ids, rng)
            model.item_factors = _started(start.item_factors, start.item_ids, self.item_ids, rng)
        model.fit(matrix, show_progress=False)
        self._set_factors(model.item_factors, model.user_factors)


WARM_ITERATIONS = 5
"""ALS sweeps of a fit that starts from a previous fit's factors
(:meth:`~ALSRecommender.start_from`)."""


def _started(factors: np.ndarray, old: IdMap, new: IdMap, rng: np.random.Generator) -> np.ndarray:
    """Initial factors for ``new``'s rows: ``factors``' row of the same id where ``old`` has
    one, else small random values (as ``implicit`` starts)."""
    out = (rng.random((len(new), factors.shape[1]), dtype=np.float32) * 0.01).astype(np.float32)
    ids = list(new)
    known = np.asarray([i in old for i in ids], dtype=bool)
    if known.any():
        out[known] = factors[old.rows([i for i, k in zip(ids, known) if k])]
    return np.ascontiguousarray(out)


class BPRRecommender(_FactorModel):
    """Bayesian personalised ranking from ``implicit`` (single-threaded, so reproducible).

    ``implicit`` keeps an item bias in the last factor column (trained users hold a constant 1
    there). A fold-in solves every column, the bias weight included, with ALS's least-squares
    loss: holding it at 1 ranks a new user's items mostly by the learned biases, which on
    citeulike-a anti-correlate with popularity (a k=1 user then scored below random).
    """

    kind = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        seed: int = 42,
        fold_in_alpha: float = 10.0,
        fold_in_regularization: float = 0.1,
    ) -> None:
        super().__init__(fold_in_alpha=fold_in_alpha, fold_in_regularization=fold_in_regularization)
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "seed": self.seed,
            "fold_in_alpha": self.fold_in_alpha,
            "fold_in_regularization": self.fold_in_regularization,
        }

    def _fit_cf(self, matrix: sp.csr_matrix) -> None:
        _import_implicit()  # the friendly message first, if implicit is missing
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=1,
        )
        model.fit(matrix, show_progress=False)
        self._set_factors(model.item_factors, model.user_factors)


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

    BLOCK = 2048
    """Items whose neighbours are found at a time in :meth:`_fit_cf`."""

    def get_params(self) -> dict[str, Any]:
        return {"neighbors": self.neighbors, "shrinkage": self.shrinkage}

    def _fit_cf(self, matrix: sp.csr_matrix) -> None:
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
        n = len(self.item_ids)
        indicator = sp.lil_matrix((len(queries), n), dtype=np.float32)
        for q, query in enumerate(queries):
            for row in self._liked_rows(query):
                indicator[q, row] = 1.0
        return np.asarray((indicator.tocsr() @ self.similarity).toarray(), dtype=np.float32)

    def _grow_items(self, n: int) -> None:
        self.similarity = grown_square(self.similarity, len(self.item_ids))

    def _get_state(self) -> dict[str, np.ndarray]:
        return {**super()._get_state(), **csr_arrays("sim", self.similarity)}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self.similarity = csr_from_arrays(arrays, "sim", len(self._counts))

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """The quotable liked item most similar to ``row``."""
        if not query.liked:
            return Reason()
        liked = self.item_ids.rows(quotable.liked, skip_unknown=True)
        return strongest_link(self.item_ids, self.similarity, liked, row, "also_liked")


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
