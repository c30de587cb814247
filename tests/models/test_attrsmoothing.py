"""The attribute-popularity part's smoothing, chosen on the hybrid's inner validation: where a
new user's attribute says what they like, the hybrid's answer to a user who revealed nothing
follows it; where it says nothing, plain popularity stays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models import UserQuery
from coldbrew.models.attrsmoothing import revealed_nothing, smoothing_candidates
from coldbrew.models.baselines import AttributePopularityRecommender, PopularityRecommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.innerval import inner_validation
from coldbrew.models.recipes import ATTRIBUTE_SMOOTHINGS


def _two_countries(telling: bool, users: int = 400, seed: int = 0) -> Dataset:
    """Items ``a0-a19`` and ``b0-b19``; a quarter of the users live in country ``b``. With
    ``telling``, each user likes 6 items of their own country's group (so ``b`` users like
    ``b`` items, three times less popular overall); without, every user draws from all items
    alike and the country says nothing. Within a group, earlier items are liked more."""
    rng = np.random.default_rng(seed)
    items = [f"{g}{i}" for g in "ab" for i in range(20)]
    taste = np.linspace(2.0, 0.5, 20)
    rows, people = [], []
    for u in range(users):
        country = "b" if u % 4 == 0 else "a"
        pool = [i for i in items if i[0] == country] if telling else items
        chances = np.resize(taste, len(pool)) / np.resize(taste, len(pool)).sum()
        for j, i in enumerate(rng.choice(pool, size=6, replace=False, p=chances)):
            rows.append((f"u{u}", i, 5.0, float(j)))
        people.append((f"u{u}", country))
    return Dataset(
        DatasetSpec("countries", user_attributes=("country",), positive_threshold=4.0),
        pd.DataFrame({"item_id": items, "title": items}),
        pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"]),
        users=pd.DataFrame(people, columns=["user_id", "country"]),
    )


def _hybrid(data: Dataset) -> HybridRecommender:
    parts = {
        "attribute_popularity": AttributePopularityRecommender(smoothing=1.0, tie_break=False),
        "popularity": PopularityRecommender(tie_break=False),
    }
    model = HybridRecommender(
        parts,
        grid_step=0.25,
        val_fraction=0.2,
        min_queries=5,
        attribute_smoothings=ATTRIBUTE_SMOOTHINGS,
    )
    return model.fit(data)


def test_a_telling_attribute_leads_a_new_user_who_revealed_nothing() -> None:
    data = _two_countries(telling=True)
    hybrid = _hybrid(data)
    chosen = hybrid.validation["smoothing/attribute_popularity"]
    assert chosen["smoothing"] < 1.0 and chosen["oof_gain"] > chosen["oof_gain_se"]
    assert hybrid.parts["attribute_popularity"].get_params()["smoothing"] == chosen["smoothing"]
    np.testing.assert_array_equal(hybrid.weights[0, 1, 0], [1.0, 0.0])  # the part alone
    query = UserQuery(attributes={"country": "b"})
    assert all(i.startswith("b") for i in hybrid.recommend(query, 10).ids)
    # the part's own smoothing would have kept the popular country's items on top
    as_built = AttributePopularityRecommender(smoothing=1.0, tie_break=False).fit(data)
    assert any(i.startswith("a") for i in as_built.recommend(query, 10).ids)


def test_a_silent_attribute_keeps_plain_popularity() -> None:
    data = _two_countries(telling=False)
    hybrid = _hybrid(data)
    assert hybrid.validation["smoothing/attribute_popularity"]["smoothing"] == 1.0
    np.testing.assert_array_equal(hybrid.weights[0, 1, 0], [0.0, 1.0])
    query = UserQuery(attributes={"country": "b"})
    plain = PopularityRecommender().fit(data)  # ties ordered by the same id hash as the blend's
    assert hybrid.recommend(query, 10).ids == plain.recommend(query, 10).ids


def test_the_chosen_smoothing_is_saved_and_kept_by_a_reusing_refit(tmp_path: Path) -> None:
    data = _two_countries(telling=True)
    hybrid = _hybrid(data)
    chosen = hybrid.parts["attribute_popularity"].get_params()["smoothing"]
    path = hybrid.save(tmp_path / "hybrid")
    loaded = HybridRecommender.load(path)
    assert isinstance(loaded, HybridRecommender)
    assert loaded.parts["attribute_popularity"].get_params()["smoothing"] == chosen
    fresh = HybridRecommender(
        {
            "attribute_popularity": AttributePopularityRecommender(smoothing=1.0, tie_break=False),
            "popularity": PopularityRecommender(tie_break=False),
        },
        attribute_smoothings=ATTRIBUTE_SMOOTHINGS,
    ).fit_reusing(data, hybrid)
    assert fresh.parts["attribute_popularity"].get_params()["smoothing"] == chosen


def test_the_choice_reads_only_the_users_who_revealed_nothing() -> None:
    _, tasks = inner_validation(_two_countries(telling=True), seed=42, fraction=0.2)
    (task,) = revealed_nothing(tasks)
    assert task.cell == 1 and not any(q.liked for q in task.queries)
    assert len(revealed_nothing(tasks)) < len(tasks)


def test_smoothing_candidates_hold_the_reference_and_reject_bad_values() -> None:
    assert smoothing_candidates((0.3, 0.1, 0.3), 1.0) == (0.1, 0.3, 1.0)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="smoothings"):
            smoothing_candidates((bad,), 1.0)
    with pytest.raises(ValueError, match="smoothings"):
        HybridRecommender(
            {"attribute_popularity": AttributePopularityRecommender()}, attribute_smoothings=(0,)
        )
