"""Baselines that ignore text: most popular (overall, or among users who share attributes) and
random."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.schema import ITEM_ID, USER_ID, Dataset
from coldbrew.models.base import NO_INTERACTIONS, Recommender, UserQuery
from coldbrew.models.privacy import check_min_users
from coldbrew.models.reasons import Reason


class PopularityRecommender(Recommender):
    """Ranks items by how many positive interactions they had in training (same list for all).

    ``tie_break`` orders items with equal counts (every new item has 0) by a hash of their id;
    without it they tie exactly, which is what a blend wants: a part that knows nothing about
    new items should not reorder them.
    """

    kind = "popularity"

    def __init__(self, tie_break: bool = True) -> None:
        super().__init__()
        self.tie_break = tie_break
        self._counts = np.zeros(0, dtype=np.float32)
        self._ties: np.ndarray = np.zeros(0, dtype=np.float32)

    def _fit(self, dataset: Dataset) -> None:
        counts = dataset.positives()[ITEM_ID].value_counts()
        self._counts = np.zeros(len(self.item_ids), dtype=np.float32)
        known = counts[counts.index.isin(list(self.item_ids))]
        self._counts[self.item_ids.rows(known.index)] = known.to_numpy(dtype=np.float32)
        if not self._counts.any():
            self.silent_reason = NO_INTERACTIONS

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        return np.tile(self._base(), (len(queries), 1))

    def _base(self) -> np.ndarray:
        # Ties (every cold item has count 0) are broken by a hash of the item id, not by catalogue
        # position: MovieLens numbers old popular films first, and position would leak that.
        if not self.tie_break:
            return self._counts
        if len(self._ties) != len(self._counts):
            self._ties = (0.5 * _id_hashes(self.item_ids.ids())).astype(np.float32)
        base: np.ndarray = self._counts + self._ties
        return base

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        return np.tile(self._base()[rows], (len(queries), 1))

    def propose(self, query: UserQuery, n: int) -> np.ndarray:
        """The ``n`` most popular items."""
        scores = np.where(self._active, self._base(), -np.inf)
        return np.argpartition(-scores, min(n, len(scores)) - 1)[:n]

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        if len(self.item_ids) > len(self._counts):
            grown = np.zeros(len(self.item_ids), dtype=np.float32)
            grown[: len(self._counts)] = self._counts
            self._counts = grown

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"counts": self._counts}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._counts = arrays["counts"].astype(np.float32)

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        return Reason("popular")


class AttributePopularityRecommender(PopularityRecommender):
    """Popularity among the users who share the query's attributes (demographic popularity).

    An item's score is its training count times, for each attribute value of the user, the lift
    ``P(item | value) / P(item)``, with ``P(item | value)`` smoothed towards ``P(item)`` by
    ``smoothing`` times the number of training positives in pseudo-interactions (rare values
    stay close to plain popularity; 0.1 was best on the cold-user *validation* users of
    ml-100k and ml-1m, whose grids peaked at 0.09 and 0.07; the hybrid's part uses 1, chosen
    on time-ordered streams, see ``models/recipes.py``). Numeric
    attributes are binned by tens (age 25 and 27 share "20s"). Without attributes, or for items
    without training interactions, it ranks exactly as :class:`PopularityRecommender`: the
    attribute-only cold user's answer when no text model knows better. Attribute values shared
    by fewer than ``min_users`` users are not learned (they give no lift, and are not saved:
    :data:`~coldbrew.models.privacy.PRIVATE_MIN_USERS`).
    """

    kind = "attribute_popularity"

    def __init__(self, smoothing: float = 0.1, tie_break: bool = True, min_users: int = 1) -> None:
        super().__init__(tie_break)
        if smoothing <= 0:
            raise ValueError(f"smoothing must be positive, got {smoothing}")
        self.smoothing = smoothing
        self.min_users = check_min_users(min_users)
        self._keys: dict[str, int] = {}
        self._value_counts = np.zeros((0, 0), dtype=np.float32)

    @staticmethod
    def attribute_key(field: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            return f"{field}={str(value).strip().lower()}"
        if not np.isfinite(float(value)):
            return f"{field}=?"
        return f"{field}={int(float(value) // 10 * 10)}s"

    def _fit(self, dataset: Dataset) -> None:
        super()._fit(dataset)
        rows: dict[str, list[str]] = {}
        for user, profile in self._profiles.items():
            for field, value in profile.get("attributes", {}).items():
                rows.setdefault(self.attribute_key(field, value), []).append(user)
        rows = {key: users for key, users in rows.items() if len(users) >= self.min_users}
        self._keys = {key: r for r, key in enumerate(sorted(rows))}
        self._value_counts = np.zeros((len(self._keys), len(self.item_ids)), dtype=np.float32)
        pos = dataset.positives()
        by_user = pos.groupby(pos[USER_ID].astype(str))[ITEM_ID]
        item_rows = {u: self.item_ids.rows(items, skip_unknown=True) for u, items in by_user}
        for key, users in rows.items():
            for user in users:
                np.add.at(self._value_counts[self._keys[key]], item_rows.get(user, []), 1.0)

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        return self._score_subset(queries, np.arange(len(self.item_ids)))

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        scores = super()._score_subset(queries, rows)
        for q, query in enumerate(queries):
            for lift in self._lifts(query.attributes).values():
                scores[q] *= lift[rows]
        return scores

    def _lifts(self, attributes: Mapping[str, Any]) -> dict[tuple[str, Any], np.ndarray]:
        """Per known attribute value: every item's smoothed lift P(item | value) / P(item)."""
        if self._counts.sum() <= 0:
            return {}
        out = {}
        for field, value in attributes.items():
            row = self._keys.get(self.attribute_key(field, value))
            if row is not None:
                out[field, value] = smoothed_lift(
                    self._value_counts[row], self._counts, self.smoothing
                )
        return out

    def lifts(self, attributes: Mapping[str, Any], row: int) -> list[tuple[str, Any, float]]:
        """How much more popular item ``row`` is among users with each attribute value than
        among everyone (the reason this model ranks it for them)."""
        return [(f, v, float(lift[row])) for (f, v), lift in self._lifts(attributes).items()]

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """The quotable attribute value among whose users ``row`` is most popular, if more so
        than among everyone."""
        ranked = sorted(self.lifts(quotable.attributes, row), key=lambda t: -t[2])
        best = ranked[0] if ranked and ranked[0][2] > 1.0 else None
        return Reason("popular", features=(best,) if best is not None else ())

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        super()._add_items(items, rows)
        if len(self.item_ids) > self._value_counts.shape[1]:
            grown = np.zeros((len(self._keys), len(self.item_ids)), dtype=np.float32)
            grown[:, : self._value_counts.shape[1]] = self._value_counts
            self._value_counts = grown

    def _get_state(self) -> dict[str, np.ndarray]:
        keys = np.array(sorted(self._keys, key=self._keys.__getitem__), dtype=str)
        return {**super()._get_state(), "keys": keys, "value_counts": self._value_counts}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self._keys = {str(k): r for r, k in enumerate(arrays["keys"].tolist())}
        self._value_counts = arrays["value_counts"].astype(np.float32)


def smoothed_lift(given: np.ndarray, counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Every item's lift ``P(item | value) / P(item)``: ``given`` holds the positives of users
    with the value, ``counts`` everyone's; ``P(item | value)`` is smoothed towards ``P(item)``
    by ``smoothing`` times all positives in pseudo-interactions. Items nobody liked get 1."""
    total = float(counts.sum())
    share = counts / max(total, 1e-12)
    prior = smoothing * total
    smoothed = (given + prior * share) / (given.sum() + prior)
    lift: np.ndarray = np.divide(smoothed, share, out=np.ones_like(share), where=counts > 0)
    return lift


def _id_hashes(ids: Sequence[str]) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per id."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(i.encode(), digest_size=4).digest(), "little") / 2**32
            for i in ids
        ],
        dtype=np.float32,
    )


class RandomRecommender(Recommender):
    """Uniformly random ranking, reproducible per (seed, user): the floor every model must beat."""

    kind = "random"

    def __init__(self, seed: int = 42) -> None:
        super().__init__()
        self.seed = seed

    def _fit(self, dataset: Dataset) -> None:
        return None

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        out = np.empty((len(queries), len(self.item_ids)), dtype=np.float32)
        for q, query in enumerate(queries):
            key = f"{self.seed}|{query.user_id}|{query.text}|{','.join(query.liked)}"
            seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
            out[q] = np.random.default_rng(seed).random(len(self.item_ids), dtype=np.float32)
        return out
