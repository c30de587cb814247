"""The next-item protocol on a hand-made dataset: which interaction is train, val and test per
user, what each query reveals, and that ranking masks the revealed history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coldbrew.bench.evaluate import build_queries, rank_queries
from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.eval.protocols import Split, cold_item_split, next_item_split, next_item_view
from coldbrew.models import PopularityRecommender, UserQuery

# file order is not time order; equal times fall back to file order
EVENTS = [
    ("ann", "c", 3.0),
    ("ann", "a", 1.0),
    ("ann", "d", 4.0),
    ("ann", "b", 2.0),
    ("ben", "x", 5.0),
    ("ben", "y", 6.0),
    ("ben", "z", 6.0),  # same time as y, later in the file: ben's last
    ("cat", "a", 1.0),
    ("cat", "x", 2.0),  # two positives: training only
    ("dan", "a", 3.0),  # one positive: training only
    ("eve", "p", 1.0),
    ("eve", "q", 2.0),
    ("eve", "p", 3.0),  # a target that repeats the history: left out
]
ITEMS = ["a", "b", "c", "d", "p", "q", "x", "y", "z", "never"]


def shop(timestamps: bool = True) -> Dataset:
    items = pd.DataFrame({"item_id": ITEMS, "title": [f"item {i}" for i in ITEMS]})
    inter = pd.DataFrame(EVENTS, columns=["user_id", "item_id", "timestamp"]).assign(value=1.0)
    if not timestamps:
        inter["timestamp"] = np.nan
    return Dataset(DatasetSpec(name="shop"), items, inter)


def pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(zip(frame["user_id"], frame["item_id"]))


def test_split_holds_out_each_users_last_two_by_time() -> None:
    split = next_item_split(shop())
    assert split.protocol == "next-item" and split.candidates is None
    assert pairs(split.test) == [("ann", "d"), ("ben", "z"), ("eve", "p")]
    assert pairs(split.val) == [("ann", "c"), ("ben", "y"), ("eve", "q")]
    assert pairs(split.train) == [
        ("ann", "a"), ("ann", "b"), ("ben", "x"), ("cat", "a"), ("cat", "x"), ("dan", "a"),
        ("eve", "p"),
    ]  # fmt: skip
    assert split.info["train_only_users"] == 2 and split.info["min_interactions"] == 3


def test_queries_reveal_the_whole_earlier_history(tmp_path: Path) -> None:
    split = Split.load(next_item_split(shop()).save(tmp_path))  # as the bench reuses it
    test = build_queries(split)
    assert test.users == ["ann", "ben"] and test.left_out == 1  # eve's target repeats p
    assert test.queries == [
        UserQuery(user_id="ann", liked=("a", "b", "c")),  # the validation target too
        UserQuery(user_id="ben", liked=("x", "y")),
    ]
    assert test.exclude == [{"a", "b", "c"}, {"x", "y"}]
    assert test.relevant == [{"d"}, {"z"}] and test.candidates is None
    val = build_queries(split, part="val")
    assert val.users == ["ann", "ben", "eve"]
    assert [q.liked for q in val.queries] == [("a", "b"), ("x",), ("p",)]
    assert val.relevant == [{"c"}, {"y"}, {"q"}]


def test_ranking_masks_the_history_over_the_whole_catalogue() -> None:
    data = shop()
    split = next_item_split(data)
    model = PopularityRecommender().fit(split.train_dataset(data))
    queries = build_queries(split)
    ranked = rank_queries(model, queries, k=len(ITEMS))
    for items, masked in zip(ranked, queries.exclude):
        assert not set(items) & masked
        assert set(items) == set(ITEMS) - masked  # every other item, "never" included


def test_needs_timestamps_three_positives_and_its_own_split() -> None:
    with pytest.raises(ValueError, match="next-item protocol needs timestamps"):
        next_item_split(shop(timestamps=False))
    with pytest.raises(ValueError, match="at least 3"):
        next_item_split(shop(), min_interactions=2)
    with pytest.raises(ValueError, match="needs a next-item split"):
        next_item_view(cold_item_split(shop()))
