"""Context as input to a learned part (issue 26): ALS fitted on users and context features."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coldbrew.data.schema import CONTEXT, Dataset
from coldbrew.models import Recommender, UserQuery
from coldbrew.models.cf import ALSRecommender
from coldbrew.models.contextcf import ContextALSRecommender
from coldbrew.models.contextual import NO_CONTEXT
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.recipes import ModelContext, make_model
from coldbrew.text import HashingEncoder
from markets import EVENING, MORNING, market

FRANCE = {"time": MORNING, "location": "France"}
UK = {"time": EVENING, "location": "UK"}
PARAMS = {"factors": 8, "regularization": 0.1, "iterations": 10, "seed": 3}


def shop() -> Dataset:
    """:func:`market`'s French mornings and British evenings, plus a returning user who bought
    two French and two British goods without saying where."""
    data = market(200)
    mixed = pd.DataFrame(
        {
            "user_id": "mix",
            "item_id": ["fr1", "fr2", "uk1", "uk2"],
            "timestamp": 1e6 + np.arange(4),
            CONTEXT: None,
            "value": np.nan,
        }
    )
    return data.with_interactions(pd.concat([data.interactions, mixed], ignore_index=True))


def side_gap(model: Recommender, query: UserQuery) -> float:
    """Mean score of the French goods minus the British ones."""
    scores = model.score([query])[0]
    fr = model.item_ids.rows([f"fr{n}" for n in range(10)])
    uk = model.item_ids.rows([f"uk{n}" for n in range(10)])
    return float(scores[fr].mean() - scores[uk].mean())


def test_the_context_moves_the_factors_answer() -> None:
    model = ContextALSRecommender(**PARAMS).fit(shop())
    assert "location=france" in model.context_keys and model.silent_reason is None
    # a returning user who bought from both sides leans to the side the context names
    assert side_gap(model, UserQuery(user_id="mix", context=FRANCE)) > 0
    assert side_gap(model, UserQuery(user_id="mix", context=UK)) < 0
    assert side_gap(model, UserQuery(user_id="mix", context={"location": "France"})) > 0
    # so does a new one who revealed a French and a British purchase
    both = ("fr3", "uk3")
    france = model.recommend(UserQuery(liked=both, context=FRANCE), k=3).ids
    assert all(i.startswith("fr") for i in france)
    assert all(
        i.startswith("uk") for i in model.recommend(UserQuery(liked=both, context=UK), k=3).ids
    )
    # one who revealed nothing gets popularity, as from ALS
    assert model.is_fallback(UserQuery(context=UK))
    assert model.recommend(UserQuery(context=UK), k=5).ids == model.recommend(UserQuery(), k=5).ids


def test_without_a_context_it_is_plain_als() -> None:
    data = shop()
    model = ContextALSRecommender(**PARAMS).fit(data)
    mix = UserQuery(user_id="mix")
    factors = model.user_factors[model.user_ids.row("mix")] @ model.item_factors.T
    np.testing.assert_allclose(model.score([mix])[0], factors, rtol=1e-5, atol=1e-6)
    # a context none of whose features was learned, or a weight of 0, reads nothing
    spain = UserQuery(user_id="mix", context={"location": "Spain", "text": "rainy"})
    np.testing.assert_array_equal(model.score([spain]), model.score([mix]))
    model.context_weight = 0.0
    np.testing.assert_array_equal(
        model.score([UserQuery(user_id="mix", context=FRANCE)]), model.score([mix])
    )
    # no event with a context: silent, and exactly ALS
    plain = data.with_interactions(data.interactions.drop(columns=[CONTEXT]))
    blind = ContextALSRecommender(**PARAMS).fit(plain)
    als = ALSRecommender(**PARAMS).fit(plain)
    assert blind.silent_reason == NO_CONTEXT
    queries = [mix, UserQuery(liked=("fr3",), context=FRANCE), UserQuery(context=UK)]
    np.testing.assert_array_equal(blind.score(queries), als.score(queries))


def test_saved_and_loaded_it_answers_the_same(tmp_path: Path) -> None:
    model = ContextALSRecommender(**PARAMS, context_weight=0.5, min_users=2).fit(shop())
    saved = model.save(tmp_path / "m")
    loaded = Recommender.load(saved)
    assert isinstance(loaded, ContextALSRecommender) and loaded.context_weight == 0.5
    for context in (FRANCE, UK, {}):
        for query in (UserQuery(context=context), UserQuery(user_id="mix", context=context)):
            np.testing.assert_array_equal(loaded.score([query]), model.score([query]))


def test_one_query_remembered_is_not_served_for_another_context() -> None:
    model = ContextALSRecommender(**PARAMS).fit(shop())
    first = model.recommend(UserQuery(user_id="mix", context=FRANCE), k=3).ids
    assert model.recommend(UserQuery(user_id="mix", context=UK), k=3).ids != first
    assert model.recommend(UserQuery(user_id="mix", context=FRANCE), k=3).ids == first


@pytest.mark.parametrize("weight", [-1.0, float("nan")])
def test_a_bad_weight_is_refused(weight: float) -> None:
    with pytest.raises(ValueError, match="context_weight"):
        ContextALSRecommender(context_weight=weight)


def travellers(n_users: int) -> Dataset:
    """Each user shops in France in the morning (French goods) and in the UK in the evening
    (British goods), alternately: their history is of both sides, what they buy next follows
    where and when they are."""
    rng = np.random.default_rng(1)
    rows = []
    for u in range(n_users):
        for e in range(8):
            side, ctx = ("fr", FRANCE) if (u + e) % 2 else ("uk", UK)
            rows.append((f"u{u}", f"{side}{rng.integers(10)}", float(10 * u + e), ctx))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", CONTEXT])
    return market(2).with_interactions(inter.assign(value=np.nan))


def test_the_hybrid_chooses_the_context_weight_on_its_validation() -> None:
    model = make_model("hybrid_context_cf", ModelContext(lambda: HashingEncoder(64), None, 42))
    model.fit(travellers(300))
    assert isinstance(model, HybridRecommender)
    chosen = model.validation["context_weight/context_cf"]
    assert chosen["context_weight"] > 0 and chosen["oof_gain"] > chosen["oof_gain_se"]
    assert model.parts["context_cf"].get_params()["context_weight"] == chosen["context_weight"]
    assert model.validation["context_weight/lm"]["context_weight"] == 0  # the words say nothing


def test_the_shuffled_control_keeps_the_contexts_but_not_what_they_went_with() -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(script))
    bench = importlib.import_module("context")
    data = travellers(20)
    shuffled = bench.shuffled_context(data, seed=0).interactions
    before, after = data.interactions, shuffled
    assert before[["user_id", "item_id"]].equals(after[["user_id", "item_id"]])
    tags = [sorted(map(str, frame[CONTEXT])) for frame in (before, after)]
    assert tags[0] == tags[1]
    side = after["item_id"].str[:2].map({"fr": "France", "uk": "UK"})
    assert (after[CONTEXT].map(lambda c: c["location"]) != side).any()
