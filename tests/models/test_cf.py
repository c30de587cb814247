"""Behaviour of the CF baselines (ALS, BPR, ItemKNN) and TF-IDF beyond the shared contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models import PopularityRecommender, UserQuery
from coldbrew.models.cf import (
    ALSRecommender,
    BPRRecommender,
    CFRecommender,
    ItemKNNRecommender,
    interaction_matrix,
    popularity_scores,
    rank_below,
)
from coldbrew.models.lfm import LightFMRecommender
from coldbrew.models.tfidf import TfidfRecommender
from topics import two_topics

CF_FACTORIES = {
    "als": lambda: ALSRecommender(factors=8, iterations=10, seed=1),
    "bpr": lambda: BPRRecommender(factors=8, iterations=200, learning_rate=0.05, seed=1),
    "itemknn": lambda: ItemKNNRecommender(neighbors=20),
}


@pytest.fixture(params=sorted(CF_FACTORIES))
def cf_model(request: pytest.FixtureRequest) -> CFRecommender:
    model: CFRecommender = CF_FACTORIES[str(request.param)]()
    return model.fit(two_topics())


def test_interaction_matrix_is_binary_and_aligned(tiny_dataset: Dataset) -> None:
    model = PopularityRecommender().fit(tiny_dataset)
    matrix, users = interaction_matrix(tiny_dataset, model.item_ids)
    assert matrix.shape == (len(users), len(model.item_ids))
    assert set(matrix.data) == {1.0}
    # dave's keyboard rating (2.0) is below the positive threshold (4.0)
    assert matrix[users.row("dave"), model.item_ids.row("keyboard")] == 0
    assert matrix[users.row("dave"), model.item_ids.row("mouse")] == 1


def test_few_shot_user_is_folded_into_their_topic(cf_model: CFRecommender) -> None:
    liked = ("i0", "i2", "i4")  # even topic
    assert not cf_model.is_fallback(UserQuery(liked=liked))
    recs = cf_model.recommend(UserQuery(liked=liked), k=10)
    even = sum(int(i[1:]) % 2 == 0 for i in recs.ids)
    assert even >= 9, recs.ids


def test_user_without_interactions_falls_back_to_popularity(cf_model: CFRecommender) -> None:
    query = UserQuery(text="outdoor hiking", attributes={"age": "18-24"})
    assert cf_model.is_fallback(query)
    assert cf_model.is_fallback(UserQuery(liked=("unknown-item",)))
    assert not cf_model.is_fallback(UserQuery(user_id="u3"))
    popular = PopularityRecommender().fit(two_topics())
    assert cf_model.recommend(query, k=15).ids == popular.recommend(query, k=15).ids


def test_items_without_interactions_rank_below_known_ones(cf_model: CFRecommender) -> None:
    cf_model.add_items(pd.DataFrame({"item_id": ["fresh"], "title": ["mountain hiking boots"]}))
    assert not cf_model.item_has_signal[cf_model.item_ids.row("fresh")]
    recs = cf_model.recommend(UserQuery(liked=("i0", "i2")), k=100)
    assert recs.ids[-1] == "fresh"


def _every_item_scored(model: CFRecommender, query: UserQuery, counts: np.ndarray) -> np.ndarray:
    """``query``'s scores the long way: every item scored (factors or summed neighbours), then
    the items without signal moved below the others by popularity (popularity alone for a
    user the model cannot place)."""
    fallback = popularity_scores(counts, model.item_ids.ids())
    if model.is_fallback(query):
        return fallback
    resolved = model.resolve(query)
    liked = np.unique(model.item_ids.rows(resolved.liked))
    liked = liked[model.item_has_signal[liked]]
    if isinstance(model, ItemKNNRecommender):
        scores = np.asarray(model.similarity[liked].sum(axis=0), dtype=np.float32)
    else:
        user = model.user_vector(resolved).astype(np.float64)  # type: ignore[attr-defined]
        factors = model.item_factors.astype(np.float64)  # type: ignore[attr-defined]
        scores = (user @ factors.T)[None, :].astype(np.float32)
    return rank_below(scores, ~model.item_has_signal, fallback)[0]


@pytest.mark.parametrize("kind", sorted(CF_FACTORIES))
def test_scores_and_proposals_skip_no_item_the_long_way_would_rank(kind: str) -> None:
    """Only the items with signal are scored (the service's 100k-item requests); the rest are
    placed where scoring every item and moving them below would put them."""
    data = two_topics(n_users=6, per_user=4)  # at most 24 of the 60 items have signal
    model = CF_FACTORIES[kind]().fit(data)
    counts = np.asarray(interaction_matrix(data, model.item_ids)[0].sum(axis=0)).ravel()
    assert 0 < model.item_has_signal.sum() < len(model.item_ids) / 2
    rows = np.arange(len(model.item_ids))[::-1].copy()  # any order, signal or not
    for query in (UserQuery(user_id="u1"), UserQuery(liked=("i0", "i2", "i7")), UserQuery()):
        long_way = _every_item_scored(model, query, counts)
        some = model.score_rows([query], rows)[0]
        np.testing.assert_allclose(some, long_way[rows], rtol=1e-6, atol=1e-6)
        proposed = model.propose(query, 5)
        best = np.sort(np.where(model.item_has_signal, long_way, -np.inf))[-5:]
        np.testing.assert_allclose(np.sort(long_way[proposed]), best, rtol=1e-6, atol=1e-6)


def test_als_fold_in_matches_implicit_recalculate_user() -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    ds = two_topics()
    ours = ALSRecommender(factors=8, regularization=0.05, iterations=5, alpha=10.0, seed=4)
    ours.fit(ds)
    matrix, users = interaction_matrix(ds, ours.item_ids)
    theirs = AlternatingLeastSquares(
        factors=8, regularization=0.05, alpha=10.0, iterations=5, random_state=4, num_threads=1
    )
    theirs.fit(matrix, show_progress=False)
    np.testing.assert_allclose(ours.item_factors, theirs.item_factors, rtol=1e-4, atol=1e-5)
    row = users.row("u5")
    history = ours.item_ids.ids(matrix[row].indices)
    expected = np.asarray(theirs.recalculate_user(row, matrix[row])).ravel()
    np.testing.assert_allclose(ours.fold_in(history), expected, rtol=1e-3, atol=1e-4)


def test_bpr_fold_in_solves_the_bias_column_too() -> None:
    model = BPRRecommender(factors=8, iterations=50, seed=2).fit(two_topics())
    assert model.item_factors.shape[1] == 9 == model.user_factors.shape[1]
    assert np.all(model.user_factors[:, -1] == 1.0)  # trained users: constant 1 on the bias
    vector = model.fold_in(["i1", "i3"])
    assert vector.shape == (9,) and vector[-1] != 0.0
    assert np.all(model.fold_in([]) == 0)


def test_cf_fit_is_deterministic_for_a_seed() -> None:
    for make in CF_FACTORIES.values():
        a, b = make().fit(two_topics()), make().fit(two_topics())
        query = UserQuery(liked=("i1", "i7"))
        np.testing.assert_array_equal(a.score([query]), b.score([query]))


def test_itemknn_keeps_only_the_nearest_neighbours() -> None:
    model = ItemKNNRecommender(neighbors=3).fit(two_topics())
    per_row = np.diff(model.similarity.indptr)
    assert per_row.max() <= 3
    assert np.all(model.similarity.diagonal() == 0)


class TestTfidf:
    def test_transform_and_item_matrix_are_unit_rows(self, tiny_dataset: Dataset) -> None:
        model = TfidfRecommender().fit(tiny_dataset)
        assert model.item_matrix.shape[0] == len(model.item_ids)
        norms = np.sqrt(np.asarray(model.item_matrix.multiply(model.item_matrix).sum(axis=1)))
        np.testing.assert_allclose(norms.ravel(), 1.0, rtol=1e-5)
        vec = model.transform(["insulated parka", "zzz unknownword"])
        assert vec.shape == (2, model.item_matrix.shape[1])
        assert vec[1].nnz == 0

    def test_words_find_items_and_empty_profiles_fall_back(self, tiny_dataset: Dataset) -> None:
        model = TfidfRecommender().fit(tiny_dataset)
        assert model.recommend(UserQuery(text="cast iron pan"), k=1).ids == ["skillet"]
        attrs_only = UserQuery(attributes={"occupation": "chef"})
        assert model.is_fallback(attrs_only)
        popular = PopularityRecommender().fit(tiny_dataset)
        assert model.recommend(attrs_only, k=12).ids == popular.recommend(attrs_only, k=12).ids

    def test_recent_likes_weigh_more(self, tiny_dataset: Dataset) -> None:
        model = TfidfRecommender(recency_decay=0.2).fit(tiny_dataset)
        recs = model.recommend(UserQuery(liked=("keyboard", "parka")), k=1)
        assert recs.ids == ["bottle"]  # shares "insulated" with the newest like


class TestLightFM:
    def test_cold_items_are_scored_from_their_words(self) -> None:
        ds = two_topics()
        model = LightFMRecommender(no_components=8, epochs=30, seed=1).fit(ds)
        model.add_items(
            pd.DataFrame({"item_id": ["new-a", "new-b"], "title": ["mountain hiking", "cooking"]})
        )
        assert model.item_has_signal[model.item_ids.rows(["new-a", "new-b"])].all()
        recs = model.recommend(
            UserQuery(liked=("i0", "i2", "i4")), k=2, candidates=["new-a", "new-b"]
        )
        assert recs.ids == ["new-a", "new-b"]

    def test_few_shot_user_is_folded_into_their_topic(self) -> None:
        model = LightFMRecommender(no_components=8, epochs=30, seed=1).fit(two_topics())
        recs = model.recommend(UserQuery(liked=("i1", "i3", "i5")), k=10)
        assert sum(int(i[1:]) % 2 == 1 for i in recs.ids) >= 9, recs.ids

    def test_attributes_make_a_cold_user_scorable(self, tiny_dataset: Dataset) -> None:
        model = LightFMRecommender(no_components=8, epochs=5, min_df=1, seed=1).fit(tiny_dataset)
        assert "occupation=student" in model.user_features
        assert not model.is_fallback(UserQuery(attributes={"occupation": "student"}))
        assert model.is_fallback(UserQuery(attributes={"occupation": "astronaut"}))
        assert model.is_fallback(UserQuery(text="just words"))

    def test_same_seed_same_scores(self, tiny_dataset: Dataset) -> None:
        def make() -> LightFMRecommender:
            return LightFMRecommender(no_components=8, epochs=5, min_df=1, seed=9)

        query = UserQuery(attributes={"age": "18-24"}, liked=("mouse",))
        a, b = make().fit(tiny_dataset), make().fit(tiny_dataset)
        np.testing.assert_array_equal(a.score([query]), b.score([query]))


def test_lightfm_keeps_the_rarest_words_per_item(tiny_dataset: Dataset) -> None:
    model = LightFMRecommender(no_components=4, epochs=2, min_df=1, max_words_per_item=2)
    model.fit(tiny_dataset)
    words = model._bag_of_words(["insulated steel water bottle with hood"])
    kept = {model.terms[c] for c in words.indices}
    assert len(kept) == 2
    # "insulated" and "with" occur in two items each, the others in one: rarer words win
    assert not kept & {"insulated", "with"}


def test_refit_forgets_the_old_popularity_ranking() -> None:
    model = ALSRecommender(factors=4, iterations=2).fit(two_topics(seed=0))
    first = model.recommend(UserQuery(text="nothing"), k=5).ids
    refit = model.fit(two_topics(seed=5))
    fresh = ALSRecommender(factors=4, iterations=2).fit(two_topics(seed=5))
    assert (
        refit.recommend(UserQuery(text="nothing"), k=5).ids
        == fresh.recommend(UserQuery(text="nothing"), k=5).ids
    )
    assert first  # the first fit ranked something


def test_attribute_popularity_ranks_by_what_users_like_them_like() -> None:
    """Students like games, chefs like pans; the overall favourite is the pan. A student (even
    an unseen one, by attributes alone) gets the game first; no attributes: plain popularity."""
    from coldbrew.models.baselines import AttributePopularityRecommender, PopularityRecommender

    items = pd.DataFrame({"item_id": ["game", "pan", "book"], "title": ["g", "p", "b"]})
    rows = [(f"s{i}", "game") for i in range(3)] + [(f"c{i}", "pan") for i in range(5)]
    rows += [("s0", "book"), ("c0", "book")]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(value=5.0, timestamp=1.0)
    users = pd.DataFrame(
        {
            "user_id": [f"s{i}" for i in range(3)] + [f"c{i}" for i in range(5)],
            "job": ["student"] * 3 + ["chef"] * 5,
            "age": [19, 21, 18, 44, 51, 38, 47, 42],
        }
    )
    spec = DatasetSpec("jobs", user_attributes=("job", "age"), positive_threshold=4.0)
    data = Dataset(spec, items, inter, users)
    model = AttributePopularityRecommender(smoothing=0.1).fit(data)
    plain = PopularityRecommender().fit(data)
    assert model.recommend(UserQuery(attributes={"job": "student"}), k=1).ids == ["game"]
    assert model.recommend(UserQuery(attributes={"age": 23}), k=1).ids == ["game"]  # s1, 21, is 20s
    # a known user's stored attributes count too
    assert model.recommend(UserQuery(user_id="s1"), k=1, exclude_seen=False).ids == ["game"]
    assert model.recommend(UserQuery(), k=3).ids == plain.recommend(UserQuery(), k=3).ids
    unknown = UserQuery(attributes={"job": "pilot"})  # a value nobody had: no lift
    assert model.recommend(unknown, k=3).ids == plain.recommend(UserQuery(), k=3).ids
    with pytest.raises(ValueError, match="smoothing"):
        AttributePopularityRecommender(smoothing=0)


def test_attribute_popularity_keeps_only_values_enough_users_share(tmp_path: Path) -> None:
    """With ``min_users=5`` the chefs' value (5 users) lifts pans; the students' (3 users) is
    neither learned nor saved: a value so few hold would point at them in the files."""
    from coldbrew.models.baselines import AttributePopularityRecommender, PopularityRecommender

    items = pd.DataFrame({"item_id": ["game", "pan", "book"], "title": ["g", "p", "b"]})
    rows = [(f"s{i}", "game") for i in range(3)] + [(f"c{i}", "book") for i in range(5)]
    rows += [(f"x{i}", "pan") for i in range(6)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(value=5.0, timestamp=1.0)
    users = pd.DataFrame(
        {"user_id": [u for u, _ in rows], "job": ["student"] * 3 + ["chef"] * 5 + ["none"] * 6}
    )
    spec = DatasetSpec("jobs", user_attributes=("job",), positive_threshold=4.0)
    data = Dataset(spec, items, inter, users)
    model = AttributePopularityRecommender(smoothing=0.1, min_users=5).fit(data)
    plain = PopularityRecommender().fit(data).recommend(UserQuery(), k=3).ids
    assert plain[0] == "pan"
    assert model.recommend(UserQuery(attributes={"job": "chef"}), k=1).ids == ["book"]
    assert model.recommend(UserQuery(attributes={"job": "student"}), k=3).ids == plain
    arrays = (model.save(tmp_path / "m") / "arrays.npz").read_bytes()
    assert "student".encode("utf-32-le") not in arrays and "chef".encode("utf-32-le") in arrays
    with pytest.raises(ValueError, match="min_users"):
        AttributePopularityRecommender(min_users=0)


def test_popularity_without_tie_break_leaves_new_items_tied() -> None:
    from coldbrew.models.baselines import AttributePopularityRecommender

    data = two_topics(n_users=10, n_items=30, per_user=3)
    data_items = data.items["item_id"].tolist()
    unseen = sorted(set(data_items) - set(data.interactions["item_id"]))
    assert len(unseen) >= 2
    for model in (
        PopularityRecommender(tie_break=False),
        AttributePopularityRecommender(0.1, False),
    ):
        scores = model.fit(data).score([UserQuery()])[0]
        assert len(set(scores[model.item_ids.rows(unseen)].tolist())) == 1
        assert model.get_params()["tie_break"] is False
    hashed = PopularityRecommender().fit(data).score([UserQuery()])[0]
    assert len(set(hashed[PopularityRecommender().fit(data).item_ids.rows(unseen)].tolist())) > 1


@pytest.mark.parametrize("repeated", [False, True])
def test_weighted_rows_add_as_the_sparse_product_does_to_the_bit(repeated: bool) -> None:
    """ItemKNN's and transitions' scores add a few sparse item rows straight into a dense row
    (no sparse matrices built per request): the same float32 numbers, to the last bit, as the
    sparse product they replace, dropped onto the items with signal; repeated rows go through
    that product itself."""
    data = two_topics(n_users=6, per_user=4)
    model = ItemKNNRecommender(neighbors=20).fit(data)
    n = len(model.item_ids)
    rng = np.random.default_rng(5)
    matrix = sp.random(n, n, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    matrix.data = rng.random(len(matrix.data), dtype=np.float32) / 7
    picked = []
    for size in (1, 3, 5):
        rows = rng.choice(n, size, replace=False)
        rows = np.concatenate([rows, rows[:1]]) if repeated else rows
        picked.append((rows, (1.0 / np.arange(1, len(rows) + 1)).astype(np.float32)))
    fast = model._weighted_rows(matrix, picked)
    for q, (rows, weights) in enumerate(picked):
        one = sp.csr_matrix((weights, (np.zeros(len(rows), int), rows)), shape=(1, n))
        expected = model._on_signal(one.astype(np.float32) @ matrix)[0]
        assert np.any(expected) and np.array_equal(fast[q], expected)
