"""Baselines that ignore text: most popular and random."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from coldbrew.data.schema import ITEM_ID, Dataset
from coldbrew.models.base import Recommender, UserQuery


class PopularityRecommender(Recommender):
    """Ranks items by how many positive interactions they had in training (same list for all)."""

    kind = "popularity"

    def __init__(self) -> None:
        super().__init__()
        self._counts = np.zeros(0, dtype=np.float32)
        self._ties: np.ndarray = np.zeros(0, dtype=np.float32)

    def get_params(self) -> dict[str, Any]:
        return {}

    def _fit(self, dataset: Dataset) -> None:
        counts = dataset.positives()[ITEM_ID].value_counts()
        self._counts = np.zeros(len(self.item_ids), dtype=np.float32)
        known = counts[counts.index.isin(list(self.item_ids))]
        self._counts[self.item_ids.rows(known.index)] = known.to_numpy(dtype=np.float32)

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        # Ties (every cold item has count 0) are broken by a hash of the item id, not by catalogue
        # position: MovieLens numbers old popular films first, and position would leak that.
        if len(self._ties) != len(self._counts):
            self._ties = (0.5 * _id_hashes(self.item_ids.ids())).astype(np.float32)
        base = self._counts + self._ties
        return np.tile(base, (len(queries), 1))

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        if len(self.item_ids) > len(self._counts):
            grown = np.zeros(len(self.item_ids), dtype=np.float32)
            grown[: len(self._counts)] = self._counts
            self._counts = grown

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"counts": self._counts}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._counts = arrays["counts"].astype(np.float32)


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

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _fit(self, dataset: Dataset) -> None:
        return None

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        out = np.empty((len(queries), len(self.item_ids)), dtype=np.float32)
        for q, query in enumerate(queries):
            key = f"{self.seed}|{query.user_id}|{query.text}|{','.join(query.liked)}"
            seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
            out[q] = np.random.default_rng(seed).random(len(self.item_ids), dtype=np.float32)
        return out
