"""Context-conditioned popularity: what is liked in this hour band, on this weekday, in this place.

Each positive event that carries a context (the ``context`` column of a dataset's interactions,
:mod:`coldbrew.models.context`) counts for its item under each of its features
(``hour_band=morning``, ``weekday=saturday``, ``location=france``...). A query is scored as
:class:`~coldbrew.models.baselines.AttributePopularityRecommender` scores attributes: an item's
training count times, for each feature the *query* carried, its smoothed lift
``P(item | feature) / P(item)``. Features the query did not carry, and features no training
event had, change nothing: without a context it ranks as plain popularity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.schema import CONTEXT, ITEM_ID, USER_ID, Dataset, has_context
from coldbrew.models.base import UserQuery
from coldbrew.models.baselines import AttributePopularityRecommender, PopularityRecommender
from coldbrew.models.context import context_features
from coldbrew.models.reasons import Reason

NO_CONTEXT = "no event carries a context"
"""The :attr:`~coldbrew.models.base.Recommender.silent_reason` of a fit on events without one."""


class ContextPopularityRecommender(AttributePopularityRecommender):
    """Popularity given the query's context (see the module docstring).

    Parameters
    ----------
    smoothing
        Pseudo-interactions pulling ``P(item | feature)`` towards ``P(item)``, as a share of all
        training positives (as in :func:`~coldbrew.models.baselines.smoothed_lift`): rare
        features stay close to plain popularity.
    tie_break
        Order items with equal counts by a hash of their id.
    min_users
        A feature seen in the events of fewer distinct users is not learned (nor saved).
    """

    kind = "context_popularity"

    def __init__(self, smoothing: float = 0.01, tie_break: bool = True, min_users: int = 1) -> None:
        super().__init__(smoothing=smoothing, tie_break=tie_break, min_users=min_users)

    def _fit(self, dataset: Dataset) -> None:
        PopularityRecommender._fit(self, dataset)  # the counts; no attribute is learned
        pos = dataset.positives()
        self._keys, self._value_counts = {}, np.zeros((0, len(self.item_ids)), np.float32)
        if not has_context(pos):
            self.silent_reason = self.silent_reason or NO_CONTEXT
            return
        pairs, self._keys = learned_pairs(pos, self.min_users)
        rows = pairs["key"].map(self._keys).to_numpy(dtype=np.int64)
        cols = self.item_ids.rows(pairs[ITEM_ID], skip_unknown=False)
        counts = np.zeros((len(self._keys), len(self.item_ids)), dtype=np.float32)
        np.add.at(counts, (rows, cols), 1.0)
        self._value_counts = counts

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        scores = np.tile(self._base()[rows], (len(queries), 1))
        for q, query in enumerate(queries):
            for lift in self._lifts(context_features(query.context)).values():
                scores[q] *= lift[rows]
        return scores

    def context_lifts(self, context: Mapping[str, Any], row: int) -> list[tuple[str, str, float]]:
        """How much more popular item ``row`` is under each feature of ``context`` than overall
        (the reason this model ranks it)."""
        return self.lifts(context_features(context), row)

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """The features of the quotable context under which ``row`` sells more than overall."""
        found = self.context_lifts(quotable.context, row)
        return Reason("in_context", features=tuple(f for f in found if f[2] > 1.0))


def learned_pairs(positives: pd.DataFrame, min_users: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """:func:`feature_pairs` of the features at least ``min_users`` distinct users' events
    carried, and those features' keys (``location=france``), sorted, each with its row."""
    pairs = feature_pairs(positives)
    users = pairs.groupby("key")[USER_ID].nunique()
    keys = {key: r for r, key in enumerate(sorted(users.index[users >= min_users]))}
    return pairs[pairs["key"].isin(keys)], keys


def feature_pairs(positives: pd.DataFrame) -> pd.DataFrame:
    """One row per (event, feature) of the events with a context: user, item and the feature's
    key (``location=france``); each distinct context's features are derived once."""
    events = positives[positives[CONTEXT].notna()]
    tags = events[CONTEXT].map(lambda c: json.dumps(c, sort_keys=True, default=str))
    firsts = dict(zip(tags, events[CONTEXT], strict=True))
    keys = {
        tag: [AttributePopularityRecommender.attribute_key(f, v) for f, v in feats.items()]
        for tag, feats in ((t, context_features(c)) for t, c in firsts.items())
    }
    frame = pd.DataFrame(
        {USER_ID: events[USER_ID].astype(str), ITEM_ID: events[ITEM_ID].astype(str)}
    )
    return frame.assign(key=tags.map(keys).to_numpy()).explode("key").dropna(subset=["key"])
