"""The context vector (issue 26): the query's context in words, read by the language model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coldbrew.data.schema import CONTEXT, Dataset, DatasetSpec
from coldbrew.models import Recommender, UserQuery
from coldbrew.models.context import context_sentence
from coldbrew.models.contextweight import context_candidates
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.recipes import ModelContext, make_model
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text import HashingEncoder

TITLES = {
    "coat": "warm winter coat",
    "scarf": "wool winter scarf",
    "sandals": "beach sandals",
    "hat": "straw sun hat",
    "umbrella": "rain umbrella",
    "boots": "rain boots",
}


def catalogue() -> Dataset:
    items = pd.DataFrame({"item_id": list(TITLES), "title": list(TITLES.values())})
    inter = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["sandals", "hat"], "value": np.nan})
    return Dataset(DatasetSpec("clothes"), items, inter)


def ranking(model: Recommender, context: dict[str, str] | None = None) -> list[str]:
    return model.recommend(UserQuery(liked=("hat",), context=context or {}), k=6).ids


def lm(weight: float) -> ZeroShotRecommender:
    return ZeroShotRecommender(HashingEncoder(256), context_weight=weight).fit(catalogue())


def test_context_words_read_as_a_sentence() -> None:
    context = {"text": "with kids", "time": "2011-06-04T09:30:00", "location": "France"}
    sentence = context_sentence({**context, "device": "mobile", "weather": "rain"})
    assert sentence == "with kids, Saturday morning in summer, in France, on mobile, weather: rain"
    assert context_sentence({}) == "" and context_sentence(None) == ""


def test_context_text_naming_a_kind_of_item_moves_it_up(tmp_path: Path) -> None:
    model = lm(1.0)
    blind = ranking(model)
    rainy = ranking(model, {"text": "rain all day"})
    assert blind.index("umbrella") > 1 and set(rainy[:2]) == {"umbrella", "boots"}
    wintry = ranking(model, {"text": "cold winter evening"})
    assert set(wintry[:2]) == {"coat", "scarf"}
    reloaded = Recommender.load(model.save(tmp_path / "lm"), encoder=HashingEncoder(256))
    assert ranking(reloaded, {"text": "rain all day"}) == rainy


def test_weight_zero_reads_no_context() -> None:
    model, blind = lm(0.0), lm(0.0)
    query = UserQuery(liked=("hat",), context={"text": "a rainy day", "location": "France"})
    np.testing.assert_array_equal(model.score([query]), blind.score([UserQuery(liked=("hat",))]))
    assert "context" not in model.contributions([query])  # an explanation never cites it


@pytest.mark.parametrize("context", [{}, {"text": "   "}])
def test_a_context_that_carries_nothing_changes_nothing(context: dict[str, str]) -> None:
    model = lm(1.0)
    with_context = model.score([UserQuery(liked=("hat",), context=context)])
    np.testing.assert_array_equal(with_context, model.score([UserQuery(liked=("hat",))]))


def test_candidate_weights_always_hold_zero_and_refuse_negatives() -> None:
    assert context_candidates((1.0, 0.5)) == (0.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="context_weights"):
        context_candidates((-0.5,))
    with pytest.raises(ValueError, match="context_weight"):
        ZeroShotRecommender(HashingEncoder(64), context_weight=float("nan"))


def market(n_users: int, *, context: bool) -> Dataset:
    """Users in France buy French goods, users in the UK British ones (item texts name the
    country); each user's four purchases carry their country as context when ``context``."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        side, place = ("fr", "France") if u % 2 else ("uk", "UK")
        for e in range(4):
            where = {"location": place} if context else None
            rows.append((f"u{u}", f"{side}{rng.integers(10)}", float(10 * u + e), where))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", CONTEXT])
    ids = [f"{side}{n}" for side in ("fr", "uk") for n in range(10)]
    titles = [f"{kind} {n} from {place}" for kind, place in (("cheese", "France"), ("tea", "UK"))
              for n in range(10)]  # fmt: skip
    items = pd.DataFrame({"item_id": ids, "title": titles})
    return Dataset(DatasetSpec("market"), items, inter.assign(value=np.nan))


def hybrid(name: str, data: Dataset) -> HybridRecommender:
    model = make_model(name, ModelContext(lambda: HashingEncoder(64), None, seed=42)).fit(data)
    assert isinstance(model, HybridRecommender)
    return model


def test_the_hybrid_reads_context_where_its_validation_says_it_helps() -> None:
    model = hybrid("hybrid", market(200, context=True))
    chosen = model.validation["context_weight/lm"]
    assert chosen["context_weight"] > 0 and chosen["oof_gain"] > chosen["oof_gain_se"]
    assert model.parts["lm"].get_params()["context_weight"] == chosen["context_weight"]


def test_without_context_the_hybrid_is_the_context_blind_one() -> None:
    data = market(120, context=False)
    model, blind = hybrid("hybrid", data), hybrid("hybrid_blind", data)
    assert model.validation["context_weight/lm"] == {"queries": 0, "context_weight": 0.0}
    np.testing.assert_array_equal(model.weights, blind.weights)
    for query in (UserQuery(user_id="u1"), UserQuery(liked=("fr1",), context={"text": "UK"})):
        assert model.recommend(query, k=5).ids == blind.recommend(query, k=5).ids
