"""Context as input to a learned part: ALS whose item factors also learn from the contexts.

The user x item matrix is stacked with one pseudo-row per context feature
(:func:`~coldbrew.models.context.context_features`: ``hour_band=morning``, ``weekday=saturday``,
``season=winter``, ``location=france``...): each positive event that carries a context also
counts, for its item, in the row of each of its features, with weight ``1 + log(count)`` (an
item bought once in that context counts as a user's like does; more purchases count more, but
slowly, so a feature shared by thousands of events does not drown the users' rows). Implicit ALS
fits the stacked matrix as it fits users, so item factors are learned jointly from users and
contexts, and each feature gets a vector in the users' space.

A query's user vector (a trained user's factor, or the fold-in of a new user's liked items) gets
``context_weight`` times the mean vector of the learned features its context carried added to
it. A query without a context, or whose features no training event had, is ranked as plain ALS
on the same factors. A new user who revealed nothing gets popularity, as from plain ALS, context
or not: the context's vector alone ranked online-retail's new users' purchases 0.13x as well as
popularity (benchmarks/notes/2026-12-06-context.md, "Context as input to a learned part").
The hybrid chooses the weight on its inner validation (:mod:`coldbrew.models.contextweight`),
keeping 0 unless another wins.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from coldbrew.data.schema import ITEM_ID, Dataset, has_context
from coldbrew.models.base import UserQuery
from coldbrew.models.baselines import AttributePopularityRecommender
from coldbrew.models.context import check_context_weight, context_features
from coldbrew.models.contextual import NO_CONTEXT, learned_pairs
from coldbrew.models.factors import ALSRecommender
from coldbrew.models.privacy import check_min_users


class ContextALSRecommender(ALSRecommender):
    """ALS fitted on users and context features together (see the module docstring).

    Parameters
    ----------
    context_weight
        How much the query's context vector adds to the user vector (0: plain ALS on these
        factors).
    min_users
        A feature seen in the events of fewer distinct users is not learned (nor saved).
    **als_params
        ``factors``, ``regularization``, ``iterations``, ``alpha``, ``seed``, ``num_threads``:
        as :class:`~coldbrew.models.cf.ALSRecommender`.
    """

    kind = "context_als"

    def __init__(self, context_weight: float = 1.0, min_users: int = 1, **als_params: Any) -> None:
        super().__init__(**als_params)
        self.context_weight = check_context_weight(context_weight)
        self.min_users = check_min_users(min_users)
        self.context_keys: dict[str, int] = {}
        self.context_factors = np.zeros((0, 0), dtype=np.float32)
        self._context_rows = sp.csr_matrix((0, 0), dtype=np.float32)

    # ---- fitting ------------------------------------------------------------------------
    def _fit(self, dataset: Dataset) -> None:
        self._context_rows = self._context_matrix(dataset)
        super()._fit(dataset)
        if not self.context_keys:
            self.silent_reason = self.silent_reason or NO_CONTEXT

    def _context_matrix(self, dataset: Dataset) -> sp.csr_matrix:
        """Features x items, ``1 + log(count)`` of the events with each feature (sets
        :attr:`context_keys`)."""
        pos = dataset.positives()
        self.context_keys = {}
        shape = (0, len(self.item_ids))
        if not has_context(pos):
            return sp.csr_matrix(shape, dtype=np.float32)
        pairs, self.context_keys = learned_pairs(pos, self.min_users)
        pairs = pairs[pairs[ITEM_ID].isin(set(self.item_ids))]
        rows = pairs["key"].map(self.context_keys).to_numpy(dtype=np.int64)
        cols = self.item_ids.rows(pairs[ITEM_ID])
        shape = (len(self.context_keys), len(self.item_ids))
        ones = np.ones(len(rows), dtype=np.float32)
        counts = sp.csr_matrix((ones, (rows, cols)), shape=shape)  # duplicates summed
        counts.data = 1.0 + np.log(counts.data)
        return counts

    def _fit_cf(self, matrix: sp.csr_matrix) -> None:
        n_users = matrix.shape[0]
        super()._fit_cf(sp.vstack([matrix, self._context_rows], format="csr"))
        self.context_factors = np.asarray(self.user_factors[n_users:], dtype=np.float32)
        self._set_factors(self.item_factors, self.user_factors[:n_users])

    # ---- scoring ------------------------------------------------------------------------
    def context_vector(self, context: Mapping[str, Any] | None) -> np.ndarray | None:
        """``context_weight`` times the mean vector of the learned features of ``context``;
        ``None`` when the weight is 0 or no feature of it was learned."""
        rows = [
            self.context_keys[key]
            for key in (
                AttributePopularityRecommender.attribute_key(field, value)
                for field, value in context_features(context).items()
            )
            if key in self.context_keys
        ]
        if not rows or self.context_weight == 0:
            return None
        vector: np.ndarray = self.context_weight * self.context_factors[rows].mean(axis=0)
        return vector

    def user_vector(self, query: UserQuery) -> np.ndarray:
        """ALS's user vector plus the query's :meth:`context_vector` (when it has one)."""
        vector = super().user_vector(query)
        extra = self.context_vector(query.context)
        return vector if extra is None else vector + extra

    def _memo_key(self, query: UserQuery) -> Hashable:
        features = tuple(sorted(context_features(query.context).items()))
        return (super()._memo_key(query), self.context_weight, features)

    # ---- persistence --------------------------------------------------------------------
    def _get_state(self) -> dict[str, np.ndarray]:
        keys = np.array(sorted(self.context_keys, key=self.context_keys.__getitem__), dtype=str)
        return {
            **super()._get_state(),
            "context_keys": keys,
            "context_factors": self.context_factors,
        }

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self.context_keys = {str(k): r for r, k in enumerate(arrays["context_keys"].tolist())}
        self.context_factors = arrays["context_factors"].astype(np.float32)
