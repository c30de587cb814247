"""The hybrid hand-over: buckets, standardisation, the inner validation and the weight search."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models import UserQuery, ZeroShotRecommender
from coldbrew.models.baselines import AttributePopularityRecommender, PopularityRecommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.innerval import NEXT_ITEM_STEPS, inner_validation
from coldbrew.models.weights import (
    USER_EDGES,
    USER_KINDS,
    simplex_grid,
    standardize,
    user_bucket,
)
from coldbrew.text import HashingEncoder


def test_user_buckets_follow_the_k_edges() -> None:
    assert [user_bucket(n) for n in (0, 1, 2, 3, 4, 5, 9, 10, 19, 20, 49, 50, 99, 100, 500)] == [
        0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7,
    ]  # fmt: skip
    assert len(USER_EDGES) == 8


def test_standardize_and_grid() -> None:
    z = standardize(np.array([[1.0, 2.0, 3.0, -np.inf]]))
    np.testing.assert_allclose(z[0, :3].mean(), 0.0, atol=1e-6)
    assert z[0, 3] < z[0, :3].min()
    grid = simplex_grid(3, 0.5)
    assert len(grid) == 6 and np.allclose(grid.sum(axis=1), 1.0)
    assert any((row == [1, 0, 0]).all() for row in grid)  # single parts are in the grid


def _two_worlds(seed: int = 0) -> Dataset:
    """Text says nothing useful (random words); popularity decides what users like."""
    rng = np.random.default_rng(seed)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    titles = [" ".join(rng.choice(words, 3)) for _ in range(60)]
    weights = np.linspace(3, 0.1, 60)
    weights /= weights.sum()
    return _drawn("worlds", titles, [weights] * 80, 8, rng)


def _topics_and_taste(seed: int = 0) -> Dataset:
    """Items belong to one of four topics (a topic word in their text); each user favours one
    topic and popular items, so text and popularity each know part of what users like."""
    rng = np.random.default_rng(seed)
    topics = ["jazz", "chess", "hiking", "baking"]
    titles = [f"{topics[i % 4]} {rng.choice(['red', 'blue', 'green'])}" for i in range(80)]
    pop = np.linspace(4, 0.2, 80)
    pop /= pop.sum()
    tastes = [pop * np.where(np.arange(80) % 4 == u % 4, 6.0, 1.0) for u in range(120)]
    return _drawn("topics", titles, [t / t.sum() for t in tastes], 10, rng)


def _drawn(
    name: str, titles: list[str], tastes: list[np.ndarray], likes: int, rng: np.random.Generator
) -> Dataset:
    """Items ``i0, i1, ...`` titled ``titles``; user ``u`` likes ``likes`` of them, drawn
    without replacement with the chances ``tastes[u]``, one after the other."""
    inter = []
    for u, taste in enumerate(tastes):
        for j, i in enumerate(rng.choice(len(titles), size=likes, replace=False, p=taste)):
            inter.append((f"u{u}", f"i{i}", 5.0, float(j)))
    return Dataset(
        DatasetSpec(name, positive_threshold=4.0),
        pd.DataFrame([(f"i{i}", t) for i, t in enumerate(titles)], columns=["item_id", "title"]),
        pd.DataFrame(inter, columns=["user_id", "item_id", "value", "timestamp"]),
    )


def test_inner_validation_keeps_its_queries_out_of_training() -> None:
    data = _two_worlds()
    inner, tasks = inner_validation(data, seed=1, fraction=0.2)
    train_pairs = set(zip(inner.interactions["user_id"], inner.interactions["item_id"]))
    assert len(inner.interactions) < len(data.interactions)
    assert {t.cell for t in tasks} == {0, 1}
    for task in tasks:
        for query, relevant in zip(task.queries, task.relevant):
            assert not {(query.user_id, i) for i in relevant} & train_pairs


def test_the_blend_learns_to_trust_the_part_that_works() -> None:
    data = _two_worlds()
    hybrid = HybridRecommender(
        {"pop": PopularityRecommender(), "text": ZeroShotRecommender(HashingEncoder(64))},
        grid_step=0.25,
        val_fraction=0.2,
        min_queries=5,
    ).fit(data)
    warm = hybrid.weights[:, 1]  # items with training interactions
    # returning users with 5+ items: popularity wins
    assert (warm[3:, 1, 0] > warm[3:, 1, 1]).all(), warm
    report = next(v for k, v in hybrid.validation.items() if k.startswith("cell1") and v["queries"])
    assert report["best_blend"] >= max(report["only_pop"], report["only_text"]) - 1e-9
    recs = hybrid.recommend(UserQuery(liked=("i59",)), k=5)
    assert len(recs) == 5


def test_one_standard_error_rule_prefers_fewer_parts_when_tied() -> None:
    from coldbrew.models.weights import one_standard_error_choice

    grid = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    rng = np.random.default_rng(0)
    base = rng.random(200)
    noisy_tie = np.stack([base, base + rng.normal(0, 0.05, 200) + 0.001, base - 0.2])
    assert one_standard_error_choice(noisy_tie, grid) == 0
    clear_win = np.stack([base, base + 0.1, base - 0.2])
    assert one_standard_error_choice(clear_win, grid) == 1
    # a default (the weights pooled over more data) stays unless clearly beaten
    assert one_standard_error_choice(noisy_tie, grid, default=1) == 1
    assert one_standard_error_choice(clear_win, grid, default=0) == 1


def test_returning_and_new_users_get_their_own_weights() -> None:
    """A user the training data knows and a new one with the same liked items are blended with
    the weights of their kind."""
    data = _two_worlds()
    parts = {"pop": PopularityRecommender(), "text": ZeroShotRecommender(HashingEncoder(64))}
    hybrid = HybridRecommender(parts, tune=False).fit(data)
    hybrid.weights[:, :, 1] = [1.0, 0.0]  # returning users: popularity only
    hybrid.weights[:, :, 0] = [0.0, 1.0]  # new users: text only
    liked = tuple(hybrid.resolve(UserQuery(user_id="u3")).liked)
    returning, new = hybrid.score([UserQuery(user_id="u3"), UserQuery(liked=liked)])
    pop, text = (standardize(p.score([UserQuery(liked=liked)]))[0] for p in parts.values())
    np.testing.assert_allclose(returning, pop, atol=1e-5)
    np.testing.assert_allclose(new, text, atol=1e-5)


def test_parts_that_cannot_reorder_a_cell_lose_their_weight_in_its_grid() -> None:
    from coldbrew.models.weights import canonical_grid

    grid = simplex_grid(3, 0.5)
    canon = canonical_grid(grid, np.array([False, True, False]))
    # the flat part's weight moves to the others; blends that rank alike become one point
    assert {tuple(r) for r in canon} == {
        (1.0, 0.0, 0.0),
        (0.5, 0.0, 0.5),
        (0.0, 0.0, 1.0),
        (0.0, 1.0, 0.0),
    }


def test_a_hybrid_saved_with_the_older_weight_layout_still_scores() -> None:
    data = _two_worlds()
    parts = {"pop": PopularityRecommender(), "text": ZeroShotRecommender(HashingEncoder(64))}
    hybrid = HybridRecommender(parts, tune=False).fit(data)
    old = np.zeros((6, 2, 2), dtype=np.float32)  # six buckets, no returning/new axis
    old[..., 0] = 1.0
    hybrid._set_state({"weights": old, "item_counts": hybrid.item_counts})
    assert hybrid.weights.shape == (len(USER_EDGES), 2, len(USER_KINDS), 2)
    many = tuple(hybrid.item_ids.ids()[:55])  # a user in the 50+ bucket the old layout lacked
    scores = hybrid.score([UserQuery(liked=many)])
    assert np.isfinite(scores[0][hybrid._active]).all()


def test_a_new_user_who_revealed_nothing_keeps_popularity_unless_beaten() -> None:
    """With nothing known, "most popular" is the weights to beat: the blend tuned on users who
    revealed items must win clearly on the revealing-nothing users' own validation to be used."""
    data = _two_worlds()
    parts = {"popularity": PopularityRecommender(), "text": ZeroShotRecommender(HashingEncoder(64))}
    hybrid = HybridRecommender(parts, grid_step=0.25, val_fraction=0.2, min_queries=5).fit(data)
    # both item cells: the new items too (no validation ever judged them for such a user)
    np.testing.assert_array_equal(hybrid.weights[0, :, 0], [[1.0, 0.0], [1.0, 0.0]])
    query = UserQuery(attributes={})
    np.testing.assert_array_equal(
        np.argsort(-hybrid.score([query])[0])[:10],
        np.argsort(-parts["popularity"].score([query])[0])[:10],
    )


def test_parts_without_weight_are_neither_scored_nor_proposing() -> None:
    """Skipping a part that weighs nothing for a query leaves every score exactly as a blend of
    all parts computes it, and that part's own top no longer enters the candidates."""
    data = _two_worlds()
    parts = {"lm": ZeroShotRecommender(HashingEncoder(64)), "pop": PopularityRecommender()}
    model = HybridRecommender(parts, tune=False).fit(data)
    model.weights[:] = (1.0, 0.0)  # the language model alone, everywhere
    queries = [model.resolve(UserQuery(user_id=f"u{u}")) for u in range(5)]
    every = model._part_scores(queries)  # both parts, as the weight search sees them
    expected = 1.0 * every[0] + 0.0 * every[1] + model._ties()[None, :]
    np.testing.assert_array_equal(model.score(queries), expected)
    rows = np.arange(0, 60, 3)
    shares = model.contributions(queries, rows)
    assert not shares["pop"].any() and shares["lm"].any()
    popular = set(parts["pop"].propose(queries[0], 5).tolist())  # items liked most
    assert not popular & set(model.propose(UserQuery(user_id="u0"), 5).tolist())
    model.weights[:] = (0.0, 1.0)
    assert popular <= set(model.propose(UserQuery(user_id="u0"), 5).tolist())


def _with_noise_attributes(data: Dataset, fields: int = 19, seed: int = 0) -> Dataset:
    """``data`` with users carrying ``fields`` random attributes that say nothing of their likes."""
    rng = np.random.default_rng(seed)
    users = sorted(data.interactions["user_id"].unique())
    names = [f"a{f}" for f in range(fields)]
    values = rng.choice(["x", "y", "z"], size=(len(users), fields))
    frame = pd.DataFrame(values, columns=names).assign(user_id=users)
    spec = replace(data.spec, user_attributes=tuple(names))
    return Dataset(spec, data.items, data.interactions, users=frame)


def test_new_users_with_uninformative_attributes_get_plain_popularity() -> None:
    """Many attributes that say nothing multiply into noisy lifts; a new user who revealed
    nothing keeps plain popularity's ranking unless the attribute part beats it out of fold."""
    data = _with_noise_attributes(_two_worlds())
    parts = {
        "attribute_popularity": AttributePopularityRecommender(smoothing=1.0, tie_break=False),
        "popularity": PopularityRecommender(tie_break=False),
        "text": ZeroShotRecommender(HashingEncoder(64)),
    }
    hybrid = HybridRecommender(parts, grid_step=0.25, val_fraction=0.2, min_queries=5).fit(data)
    np.testing.assert_array_equal(hybrid.weights[0, 1, 0], [0.0, 1.0, 0.0])
    query = UserQuery(attributes={f"a{f}": "x" for f in range(19)})
    assert parts["attribute_popularity"].recommend(query, 10) != parts["popularity"].recommend(
        query, 10
    )  # the attributes would reorder the top
    plain = PopularityRecommender().fit(data)  # ties ordered by the same id hash as the blend's
    assert hybrid.recommend(query, 10).ids == plain.recommend(query, 10).ids


def _pinned_hybrid(next_item_queries: int) -> HybridRecommender:
    hybrid = HybridRecommender(
        {"pop": PopularityRecommender(), "text": ZeroShotRecommender(HashingEncoder(dim=64))},
        grid_step=0.25,
        seed=3,
        min_queries=5,
        next_item_queries=next_item_queries,
    )
    return hybrid.fit(_topics_and_taste())


PINNED_CHOICES = {
    "cell0/known/bucket5": 0.6561531881924945,
    "cell1/known/bucket5": 0.23085932781782767,  # ties at the 20th place by column since 2026-12-07
    "cell1/new/bucket0": 0.27265622922410787,
    "cell1/new/bucket1": 0.2111113130247317,
    "cell1/new/bucket3": 0.24527613543479318,
    "cell1/new/bucket5": 0.32459175561975767,
}


def test_the_hybrids_weight_choice_on_a_fixture_is_pinned() -> None:
    """What the search chose (and saw) on this fixture before the blend was one function:
    returning users the text alone, new users a quarter popularity and three quarters text
    (without next-item queries returning users who reveal likes share the returning users')."""
    hybrid = _pinned_hybrid(next_item_queries=False)
    expected = np.zeros((len(USER_EDGES), 2, len(USER_KINDS), 2), dtype=np.float32)
    expected[:, :, :] = [0.0, 1.0]
    expected[:, 1, 0] = [0.25, 0.75]
    np.testing.assert_array_equal(hybrid.weights, expected)
    seen = {k: v["chosen"] for k, v in hybrid.validation.items() if v.get("queries")}
    assert seen == pytest.approx(PINNED_CHOICES, rel=1e-12)


@pytest.mark.parametrize("steps", [1, NEXT_ITEM_STEPS])
def test_next_item_queries_choose_their_own_users_weights_and_move_no_others(steps: int) -> None:
    """Next-item queries (the fixture has timestamps; the latest like alone, or the default's
    latest few) are searched as a group of their own, returning users who reveal likes, on
    items with interactions; every other group's weights and validation are those pinned
    above, bit for bit; more steps ask more queries of that group alone."""
    pooled, default = _pinned_hybrid(False), _pinned_hybrid(steps)
    np.testing.assert_array_equal(default.weights[:, :, :2], pooled.weights[:, :, :2])
    searched = {k: v for k, v in default.validation.items() if "/revealing/" in k}
    assert {k for k, v in searched.items() if v["queries"]} and all(
        k.startswith("cell1/") for k in searched
    )
    others = {k: v for k, v in default.validation.items() if k not in searched}
    assert others == pooled.validation
    if steps > 1:
        latest = _pinned_hybrid(1).validation
        asked = sum(v["queries"] for v in searched.values())
        assert asked > sum(v["queries"] for k, v in latest.items() if "/revealing/" in k)
        return
    # those users are served the weights chosen on their own queries, the others theirs
    user, history = next(iter(default._history.items()))
    fresh = next(i for i in default.item_ids.ids() if i not in history)
    asking = default.resolve(UserQuery(user_id=user))
    revealing = default.resolve(UserQuery(user_id=user, liked=(*history, fresh)))
    bucket = user_bucket(len(revealing.liked))
    assert not np.array_equal(default.weights[bucket, 1, 2], default.weights[bucket, 1, 1])
    np.testing.assert_array_equal(default.query_weights(revealing), default.weights[bucket, :, 2])
    np.testing.assert_array_equal(default.query_weights(asking), default.weights[bucket, :, 1])
