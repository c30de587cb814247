"""Matrix-factorisation CF: ALS and BPR from ``implicit`` (single-threaded, so reproducible).

Scores are ``user_vector @ item_factors.T``. A few-shot user is *folded in*, not retrained: a
ridge problem against the fixed item factors (for ALS the same weighted least squares
``implicit`` solves in training). ``implicit`` is an optional dependency
(``pip install coldbrew[cf]``); it is imported in ``fit``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from coldbrew.data.idmap import IdMap
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.cfbase import CFRecommender, ridge_fold_in
from coldbrew.models.reasons import Reason, closest_liked


def _import_implicit() -> Any:
    try:
        import implicit
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("ALS/BPR need implicit: pip install 'coldbrew[cf]'") from exc
    return implicit


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
        self._factors64: tuple[np.ndarray, np.ndarray] | None = None

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
        return self._products(queries, self._factors())

    def _factors(self) -> np.ndarray:
        """The factors of the items with signal in float64, converted once per set of factors
        and items, not per request (the others' scores are never read)."""
        rows = self._signal().rows
        if self._factors64 is None or self._factors64[0] is not rows:
            self._factors64 = (rows, self.item_factors[rows].astype(np.float64))
        return self._factors64[1]

    def _products(self, queries: Sequence[UserQuery], factors: np.ndarray) -> np.ndarray:
        # float64 products: a batch scores exactly as the same queries one by one
        users = np.stack([self.user_vector(q) for q in queries]).astype(np.float64)
        return np.asarray(users @ factors.T, dtype=np.float32)

    def _set_factors(self, item_factors: np.ndarray, user_factors: np.ndarray) -> None:
        """Replace the factors; the fold-in Gram matrix is recomputed from them when next needed."""
        self._gram = None
        self._factors64 = None
        self._remembered.forget()
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
