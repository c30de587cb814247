"""Context-conditioned popularity (issue 26): what sells in this place and hour band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from coldbrew.data.schema import CONTEXT, Dataset, DatasetSpec
from coldbrew.models import Recommender, UserQuery
from coldbrew.models.contextual import NO_CONTEXT, ContextPopularityRecommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.recipes import ModelContext, make_model
from coldbrew.text import HashingEncoder
from markets import EVENING, MORNING, market


def shop(*extra: tuple[str, str, dict[str, str] | None]) -> Dataset:
    """Croissants sell in France in the morning, tea in the UK in the evening; umbrellas sell
    most overall, everywhere and at any hour."""
    rows = []
    for n in range(30):
        rows.append((f"fr{n}", "croissant", {"time": MORNING, "location": "France"}))
        rows.append((f"uk{n}", "tea", {"time": EVENING, "location": "UK"}))
    for n in range(40):
        place = "France" if n % 2 else "UK"
        rows.append(
            (f"all{n}", "umbrella", {"time": MORNING if n % 4 < 2 else EVENING, "location": place})
        )
    rows += [("quiet", "map", None), *extra]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", CONTEXT])
    inter = inter.assign(value=np.nan, timestamp=np.arange(len(inter), dtype=float))
    items = pd.DataFrame(
        {"item_id": ["croissant", "tea", "umbrella", "map"], "title": ["a", "b", "c", "d"]}
    )
    return Dataset(DatasetSpec("shop"), items, inter)


def top(model: Recommender, context: dict[str, str]) -> list[str]:
    return model.recommend(UserQuery(context=context), k=4).ids


def test_the_answer_follows_the_place_and_the_hour() -> None:
    model = ContextPopularityRecommender(smoothing=0.01).fit(shop())
    assert top(model, {})[0] == "umbrella"  # no context: plain popularity
    assert top(model, {"location": "France"})[0] == "croissant"
    assert top(model, {"location": "UK"})[0] == "tea"
    assert top(model, {"time": EVENING})[0] == "tea"  # the hour band alone
    assert top(model, {"location": "Spain", "device": "tv"}) == top(model, {})  # unknown: none
    assert top(model, {"text": "rainy morning"}) == top(model, {})  # text is not a feature
    lifts = dict((f, lift) for f, _, lift in model.context_lifts({"location": "France"}, 0))
    assert lifts["location"] > 1.5


def test_heavy_smoothing_keeps_rare_contexts_near_plain_popularity() -> None:
    model = ContextPopularityRecommender(smoothing=100.0).fit(shop())
    assert top(model, {"location": "France"})[0] == "umbrella"


def test_a_feature_few_users_share_is_not_learned_nor_saved(tmp_path: Path) -> None:
    data = shop(("one", "map", {"location": "Andorra"}))
    needle = "andorra".encode("utf-32-le")  # how numpy saves strings
    learned = ContextPopularityRecommender(min_users=1).fit(data)
    assert needle in (learned.save(tmp_path / "all") / "arrays.npz").read_bytes()
    assert top(learned, {"location": "Andorra"})[0] == "map"
    model = ContextPopularityRecommender(min_users=2).fit(data)
    saved = model.save(tmp_path / "m")
    assert needle not in (saved / "arrays.npz").read_bytes()
    assert top(model, {"location": "Andorra"}) == top(model, {})
    loaded = Recommender.load(saved)
    for context in ({"location": "France"}, {"time": EVENING}, {}):
        assert top(loaded, context) == top(model, context)


def test_without_context_it_is_silent_and_ranks_by_popularity() -> None:
    data = shop()
    plain = data.with_interactions(data.interactions.drop(columns=[CONTEXT]))
    model = ContextPopularityRecommender().fit(plain)
    assert model.silent_reason == NO_CONTEXT
    assert top(model, {"location": "France"})[0] == "umbrella"


def _hybrid(name: str) -> Recommender:
    return make_model(name, ModelContext(lambda: HashingEncoder(64), None, seed=42))


def test_the_hybrid_weighs_context_for_new_users_where_it_predicts() -> None:
    model = _hybrid("hybrid_context").fit(market(400))
    assert isinstance(model, HybridRecommender)
    chosen = model.validation["cell1/new/bucket0"]
    assert chosen["best_part"] == "context_popularity" and chosen["oof_gain"] > 0
    france = model.recommend(UserQuery(context={"location": "France"}), k=3).ids
    uk = model.recommend(UserQuery(context={"time": "2011-06-06T21:00", "location": "UK"}), k=3)
    assert all(i.startswith("fr") for i in france) and all(i.startswith("uk") for i in uk.ids)


def test_without_context_the_part_changes_nothing() -> None:
    """On events without context (every benchmark dataset but the opt-in ones) the context
    part is silent: the hybrid's weights and answers are the default hybrid's."""
    data = market(120)
    data = data.with_interactions(data.interactions.drop(columns=[CONTEXT]))
    plain, with_part = _hybrid("hybrid").fit(data), _hybrid("hybrid_context").fit(data)
    assert isinstance(plain, HybridRecommender) and isinstance(with_part, HybridRecommender)
    np.testing.assert_array_equal(with_part.weights[..., :-1], plain.weights)
    assert not with_part.weights[..., -1].any()
    for query in (UserQuery(user_id="u1"), UserQuery(liked=("fr1",)), UserQuery()):
        assert with_part.recommend(query, k=5).ids == plain.recommend(query, k=5).ids
