"""Deterministic splits for the evaluation protocols in DESIGN.md.

A split is a set of interaction tables plus the candidate items and the users to evaluate; it
saves to a directory (Parquet + JSON) so it can be inspected and reused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coldbrew.data.schema import ITEM_ID, USER_ID, Dataset

PARTS = ("train", "val", "test")


@dataclass
class Split:
    """One protocol's split of a dataset's positive interactions.

    ``train`` is what models may learn from; ``val`` is for tuning and early stopping; ``test`` is
    only for the final figures. ``candidates`` limits ranking (``None``: the whole catalogue).
    """

    protocol: str
    dataset: str
    seed: int
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    candidates: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def train_dataset(self, dataset: Dataset) -> Dataset:
        """The catalogue and users of ``dataset`` with only the training interactions."""
        return dataset.with_interactions(self.train)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            getattr(self, part).to_parquet(directory / f"{part}.parquet", index=False)
        meta = {
            "protocol": self.protocol,
            "dataset": self.dataset,
            "seed": self.seed,
            "candidates": self.candidates,
            "info": self.info,
        }
        (directory / "split.json").write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Split:
        directory = Path(directory)
        meta = json.loads((directory / "split.json").read_text())
        parts = {p: pd.read_parquet(directory / f"{p}.parquet") for p in PARTS}
        return cls(
            meta["protocol"],
            meta["dataset"],
            meta["seed"],
            candidates=meta["candidates"],
            info=meta["info"],
            **parts,
        )


def _shuffled_parts(
    frame: pd.DataFrame, fractions: tuple[float, ...], rng: np.random.Generator
) -> list[pd.DataFrame]:
    """Split rows at random into consecutive parts of the given fractions."""
    order = rng.permutation(len(frame))
    bounds = np.floor(np.cumsum(fractions)[:-1] * len(frame)).astype(int)
    return [frame.iloc[np.sort(idx)].reset_index(drop=True) for idx in np.split(order, bounds)]


def cold_item_split(dataset: Dataset, *, cold_fraction: float = 0.2, seed: int = 42) -> Split:
    """The ColdRec/ALDI cold-item split.

    ``cold_fraction`` of the items with positive interactions become cold; warm interactions are
    split 80/10/10 into train/val/test, cold items' interactions 50/50 into val/test. Test ranks
    only the cold items that appear in the cold test part (``candidates``); its ``test`` holds
    only cold-item interactions, and ``info["warm_test"]`` counts the warm test rows kept apart.
    """
    if not 0 < cold_fraction < 1:
        raise ValueError(f"cold_fraction must be in (0, 1), got {cold_fraction}")
    positives = dataset.positives().reset_index(drop=True)
    rng = np.random.default_rng(seed)
    items = np.sort(positives[ITEM_ID].unique())
    n_cold = max(1, round(cold_fraction * len(items)))
    cold = set(rng.choice(items, size=n_cold, replace=False).tolist())
    is_cold = positives[ITEM_ID].isin(cold)
    warm_train, warm_val, warm_test = _shuffled_parts(positives[~is_cold], (0.8, 0.1, 0.1), rng)
    cold_val, cold_test = _shuffled_parts(positives[is_cold], (0.5, 0.5), rng)
    candidates = sorted(set(cold_test[ITEM_ID]))
    info = {
        "cold_items": len(cold),
        "cold_test_items": len(candidates),
        "warm_val": len(warm_val),
        "warm_test": len(warm_test),
        "test_users": int(cold_test[USER_ID].nunique()),
        "cold_val_items": sorted(set(cold_val[ITEM_ID])),
    }
    return Split(
        "cold-item",
        dataset.name,
        seed,
        train=warm_train,
        val=cold_val,
        test=cold_test,
        candidates=candidates,
        info=info,
    )
