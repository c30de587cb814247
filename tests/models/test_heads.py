"""The cheap heads: ridge maps on frozen vectors learn planted structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models import UserQuery, ZeroShotRecommender
from coldbrew.models.heads import (
    AttributeMapRecommender,
    apply_ridge,
    attribute_tokens,
    fit_ridge,
)
from coldbrew.text import HashingEncoder


def test_ridge_recovers_a_linear_map_in_both_regimes() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(size=(5, 3))
    for rows in (200, 3):  # primal and dual solve
        x = rng.normal(size=(rows, 5))
        y = x @ true + 2.0
        w = fit_ridge(x, y, alpha=1e-6)
        np.testing.assert_allclose(apply_ridge(w, x), y, atol=1e-3)
    with pytest.raises(ValueError, match="alpha"):
        fit_ridge(x, y, alpha=0)


def test_attribute_tokens_bucket_numbers_and_skip_missing() -> None:
    tokens = attribute_tokens({"age": "27", "job": "Chef", "zip": None}, ["age", "job", "zip"])
    assert tokens == ["age=20s", "job=chef"]


def _taste_by_job() -> Dataset:
    """Cooks like kitchen items, coders like electronics; attribute text says nothing of it."""
    items = [(f"k{i}", f"kitchen pan pot skillet {i}") for i in range(6)]
    items += [(f"e{i}", f"keyboard mouse monitor {i}") for i in range(6)]
    users, inter = [], []
    for u in range(20):
        job = "cook" if u % 2 else "coder"
        users.append((f"u{u}", job))
        prefix = "k" if job == "cook" else "e"
        inter += [(f"u{u}", f"{prefix}{(u + j) % 6}", 5.0, float(j)) for j in range(3)]
    return Dataset(
        DatasetSpec("jobs", user_attributes=("job",), positive_threshold=4.0),
        pd.DataFrame(items, columns=["item_id", "title"]),
        pd.DataFrame(inter, columns=["user_id", "item_id", "value", "timestamp"]),
        pd.DataFrame(users, columns=["user_id", "job"]),
    )


def test_attribute_map_learns_what_attribute_text_cannot() -> None:
    data = _taste_by_job()
    mapped = AttributeMapRecommender(HashingEncoder(64), alpha=0.1).fit(data)
    plain = ZeroShotRecommender(HashingEncoder(64)).fit(data)

    def hits(model: ZeroShotRecommender, job: str, prefix: str) -> int:
        recs = model.recommend(UserQuery(attributes={"job": job}), k=6)
        return sum(i.startswith(prefix) for i in recs.ids)

    assert hits(mapped, "cook", "k") == 6 and hits(mapped, "coder", "e") == 6
    assert hits(plain, "cook", "k") < 6 or hits(plain, "coder", "e") < 6


def test_attribute_map_keeps_only_values_enough_users_share() -> None:
    """10 cooks and 10 coders: with ``min_users=11`` neither job is a feature (and none is
    saved); with 10 both are."""
    data = _taste_by_job()
    shared = AttributeMapRecommender(HashingEncoder(64), alpha=0.1, min_users=10).fit(data)
    rare = AttributeMapRecommender(HashingEncoder(64), alpha=0.1, min_users=11).fit(data)
    assert shared.vocabulary == ["job=coder", "job=cook"]
    assert rare.vocabulary == []


def test_cf_map_with_lexical_features_round_trips(tiny_dataset: Dataset, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from coldbrew.models import Recommender
    from coldbrew.models.cf import ALSRecommender
    from coldbrew.models.heads import CFMapRecommender

    model = CFMapRecommender(
        HashingEncoder(64), ALSRecommender(factors=4, iterations=3, seed=1), lexical_dims=4
    ).fit(tiny_dataset)
    assert model.components.shape[0] == 4
    model.add_items(pd.DataFrame({"item_id": ["scarf"], "title": ["Wool scarf"]}))
    loaded = Recommender.load(model.save(tmp_path / "m"))
    for query in (UserQuery(user_id="alice"), UserQuery(liked=("mouse",))):
        a, b = model.recommend(query, k=5), loaded.recommend(query, k=5)
        assert a.ids == b.ids


def test_cf_map_chooses_its_penalty_and_reads_a_text_users_words(tiny_dataset: Dataset) -> None:
    from coldbrew.models.cf import ALSRecommender
    from coldbrew.models.heads import CFMapRecommender

    model = CFMapRecommender(
        HashingEncoder(64),
        ALSRecommender(factors=4, iterations=3, seed=1),
        alpha_grid=(0.1, 1000.0),
        lexical_dims=4,
    ).fit(tiny_dataset)
    assert model.alpha in (0.1, 1000.0)
    assert model.get_params()["alpha_grid"] == [0.1, 1000.0]
    text = model.user_factors([UserQuery(text="wool scarf for winter")])
    assert np.abs(text).sum() > 0  # the map reads the words, not only the MiniLM vector
    with pytest.raises(ValueError, match="alpha_grid"):
        CFMapRecommender(HashingEncoder(8), ALSRecommender(), alpha_grid=(0.0,))


@pytest.mark.parametrize("kind", ["attribute_map", "zeroshot"])
def test_each_attribute_combination_is_encoded_once(kind: str) -> None:
    class Counting(HashingEncoder):
        calls = 0

        def encode(self, texts, **kwargs):  # type: ignore[no-untyped-def]
            Counting.calls += 1
            return super().encode(texts, **kwargs)

    model = (
        AttributeMapRecommender(Counting(64), alpha=0.1)
        if kind == "attribute_map"
        else ZeroShotRecommender(Counting(64))
    ).fit(_taste_by_job())
    Counting.calls = 0
    first = model.recommend(UserQuery(attributes={"job": "cook"}), k=3)
    again = model.recommend(UserQuery(attributes={"job": "cook"}), k=3)
    assert first.ids == again.ids and Counting.calls == 1
