from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.eval.evaluate import evaluate
from coldbrew.eval.protocols import Split, cold_item_split
from coldbrew.models import PopularityRecommender, RandomRecommender, ZeroShotRecommender
from coldbrew.text import HashingEncoder


def synthetic(n_users: int = 60, n_items: int = 300, seed: int = 0) -> Dataset:
    """Two topics; users like items of their topic. Item text names the topic."""
    rng = np.random.default_rng(seed)
    topics = ["mountain hiking outdoor", "kitchen cooking recipe"]
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"{topics[j % 2]} thing {j}" for j in range(n_items)],
        }
    )
    rows = []
    for u in range(n_users):
        liked = [j for j in range(n_items) if j % 2 == u % 2]
        for j in rng.choice(liked, size=12, replace=False):
            rows.append((f"u{u}", f"i{j}", 5.0, float(rng.integers(0, 1000))))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])
    return Dataset(DatasetSpec("synthetic", positive_threshold=4.0), items, inter)


def test_cold_item_split_partitions_by_item_and_is_deterministic() -> None:
    ds = synthetic()
    split = cold_item_split(ds, seed=42)
    cold = set(split.test["item_id"]) | set(split.val["item_id"])
    assert not cold & set(split.train["item_id"])
    assert set(split.candidates or []) == set(split.test["item_id"])
    total = len(split.train) + len(split.val) + len(split.test)
    assert total + split.info["warm_val"] + split.info["warm_test"] == len(ds.positives())
    again = cold_item_split(ds, seed=42)
    pd.testing.assert_frame_equal(split.test, again.test)
    other = cold_item_split(ds, seed=7)
    assert set(other.test["item_id"]) != set(split.test["item_id"])


def test_split_round_trips_through_disk(tmp_path: Path) -> None:
    split = cold_item_split(synthetic(), seed=1)
    loaded = Split.load(split.save(tmp_path / "s"))
    pd.testing.assert_frame_equal(loaded.train, split.train)
    assert loaded.candidates == split.candidates and loaded.info == split.info


def test_text_model_beats_random_on_cold_items() -> None:
    ds = synthetic()
    split = cold_item_split(ds, seed=42)
    train = split.train_dataset(ds)
    lm = evaluate(ZeroShotRecommender(HashingEncoder()).fit(train), split).metrics
    rnd = evaluate(RandomRecommender().fit(train), split).metrics
    pop = evaluate(PopularityRecommender().fit(train), split).metrics
    # the topic halves the candidates: text finds every relevant item within the top 20
    assert lm["recall@20"] > 0.95 > 0.7 > rnd["recall@20"]
    for metrics in (lm, rnd, pop):
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
