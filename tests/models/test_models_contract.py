"""One contract every registered Recommender passes (implicit's test mixin, in spirit)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest

from coldbrew.data.schema import Dataset
from coldbrew.models import (
    ModelNotFittedError,
    PopularityRecommender,
    RandomRecommender,
    Recommender,
    UserQuery,
    ZeroShotRecommender,
)
from coldbrew.models.adapted import AdaptedZeroShotRecommender
from coldbrew.models.baselines import AttributePopularityRecommender
from coldbrew.models.candidates import CandidateRecommender
from coldbrew.models.cf import ALSRecommender, BPRRecommender, ItemKNNRecommender
from coldbrew.models.contextcf import ContextALSRecommender
from coldbrew.models.contextual import ContextPopularityRecommender
from coldbrew.models.finetuned import FineTunedRecommender
from coldbrew.models.heads import AttributeMapRecommender, CFMapRecommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.lfm import LightFMRecommender
from coldbrew.models.reasons import LIKED_KINDS, ReasonKind
from coldbrew.models.registry import model_classes
from coldbrew.models.sasrec import SASRecRecommender
from coldbrew.models.sequence import LinearTransitionRecommender, TransitionRecommender
from coldbrew.models.tfidf import TfidfRecommender
from coldbrew.text import HashingEncoder


# kind -> (factory, reads item text?). Interaction-only models (popularity, random, ALS, BPR,
# ItemKNN, transitions) cannot see a brand-new item's text: a new item has no interactions, so
# they have no signal for it and rank it below every item they know. The planted near-duplicate
# test is for content models only; the CF models' own behaviour is tested in
# tests/models/test_cf.py.
def _hybrid() -> HybridRecommender:
    return HybridRecommender(
        {
            "cf": ALSRecommender(factors=8, iterations=5, seed=3),
            "lm": AttributeMapRecommender(HashingEncoder(128), alpha=1.0),
            "lexical": TfidfRecommender(),
        },
        grid_step=0.5,
        min_queries=1,
    )


def _inner(model: Recommender) -> Recommender:
    """The model a :class:`CandidateRecommender` wraps; any other model itself."""
    return model.wrapped if isinstance(model, CandidateRecommender) else model


FACTORIES: dict[str, tuple[Callable[[], Recommender], bool]] = {
    "popularity": (PopularityRecommender, False),
    "attribute_popularity": (AttributePopularityRecommender, False),
    "context_popularity": (ContextPopularityRecommender, False),
    "random": (lambda: RandomRecommender(seed=7), False),
    "zeroshot": (lambda: ZeroShotRecommender(HashingEncoder(128)), True),
    "adapted_zeroshot": (lambda: AdaptedZeroShotRecommender(HashingEncoder(128), epochs=2), True),
    "als": (lambda: ALSRecommender(factors=8, iterations=5, seed=3), False),
    "context_als": (lambda: ContextALSRecommender(factors=8, iterations=5, seed=3), False),
    "bpr": (lambda: BPRRecommender(factors=8, iterations=20, seed=3), False),
    "itemknn": (lambda: ItemKNNRecommender(neighbors=5), False),
    "transitions": (lambda: TransitionRecommender(window=2), False),
    "linear_transitions": (lambda: LinearTransitionRecommender(window=2, l2=1.0), False),
    "sasrec": (lambda: SASRecRecommender(hidden=8, blocks=1, max_epochs=2, seed=3), False),
    "tfidf": (TfidfRecommender, True),
    "lightfm": (lambda: LightFMRecommender(no_components=8, epochs=10, min_df=1, seed=3), True),
    "finetuned": (lambda: FineTunedRecommender(HashingEncoder(128)), True),
    "hybrid": (lambda: _hybrid(), True),
    # n as large as the catalogue: the whole contract holds (every item may be asked for);
    # scoring fewer is tests/models/test_candidates.py's
    "candidates": (lambda: CandidateRecommender(_hybrid(), n=12), True),
    "attribute_map": (lambda: AttributeMapRecommender(HashingEncoder(128), alpha=1.0), True),
    "cf_map": (
        lambda: CFMapRecommender(
            HashingEncoder(128), ALSRecommender(factors=8, iterations=5, seed=3), alpha=0.1
        ),
        True,
    ),
}


def test_every_registered_model_is_under_contract() -> None:
    assert set(model_classes()) <= set(FACTORIES), "add a factory for each new model kind"


@pytest.fixture(params=sorted(FACTORIES))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fitted(kind: str, tiny_dataset: Dataset) -> Recommender:
    return FACTORIES[kind][0]().fit(tiny_dataset)


QUERIES = [
    UserQuery(user_id="alice"),
    UserQuery(text="a warm jacket for winter"),
    UserQuery(attributes={"age": "18-24", "occupation": "student"}),
    UserQuery(liked=("keyboard",)),
    UserQuery(text="coffee", liked=("skillet",), attributes={"occupation": "chef"}),
    UserQuery(text="camping", context={"time": "2011-06-04T09:30:00", "location": "France"}),
]


class TestRecommenderContract:
    def test_unfitted_model_refuses_to_score(self, kind: str) -> None:
        with pytest.raises(ModelNotFittedError):
            FACTORIES[kind][0]().recommend(UserQuery(text="x"))

    def test_returns_k_unique_known_items_best_first(self, fitted: Recommender) -> None:
        for query in QUERIES:
            recs = fitted.recommend(query, k=5)
            assert len(recs) == 5
            assert len(set(recs.ids)) == 5
            assert set(recs.ids) <= set(fitted.item_ids)
            assert np.all(np.diff(recs.scores) <= 0)

    def test_excludes_seen_and_excluded_items(self, fitted: Recommender) -> None:
        recs = fitted.recommend(UserQuery(user_id="alice"), k=20, exclude=["jacket"])
        assert not {"boots", "tent", "bottle", "jacket"} & set(recs.ids)
        assert len(recs) == 12 - 4
        recs = fitted.recommend(UserQuery(liked=("mouse",)), k=20)
        assert "mouse" not in recs.ids

    def test_candidates_restrict_the_ranking(self, fitted: Recommender) -> None:
        recs = fitted.recommend(
            UserQuery(text="shoes"), k=10, candidates=["boots", "runners", "nope"]
        )
        assert sorted(recs.ids) == ["boots", "runners"]

    def test_k_must_be_positive(self, fitted: Recommender) -> None:
        with pytest.raises(ValueError, match="k must be"):
            fitted.recommend(UserQuery(text="x"), k=0)

    def test_batch_equals_single_calls(self, fitted: Recommender) -> None:
        batch = fitted.recommend_batch(QUERIES, k=4)
        for query, recs in zip(QUERIES, batch):
            single = fitted.recommend(query, k=4)
            assert single.ids == recs.ids
            # float32 scores summed in another order: a few ulps of a score near 1 (a blend's
            # small scores, 0.01, differ by 1e-7 absolute, which is 1e-5 relative)
            np.testing.assert_allclose(single.scores, recs.scores, rtol=1e-5, atol=1e-6)

    def test_new_item_is_recommendable_and_removal_is_final(self, fitted: Recommender) -> None:
        fitted.add_items(
            pd.DataFrame({"item_id": ["scarf"], "title": ["Wool scarf"], "category": ["clothing"]})
        )
        assert "scarf" in fitted.recommend(UserQuery(text="scarf"), k=20).ids
        fitted.remove_items(["scarf", "tent"])
        ids = fitted.recommend(UserQuery(text="scarf tent"), k=20).ids
        assert "scarf" not in ids and "tent" not in ids

    def test_save_load_gives_identical_recommendations(
        self, fitted: Recommender, tmp_path: Path
    ) -> None:
        fitted.save(tmp_path / "model")
        loaded = Recommender.load(tmp_path / "model")
        assert type(loaded) is type(fitted)
        assert loaded.get_params() == fitted.get_params()
        for query in QUERIES:
            a, b = fitted.recommend(query, k=6), loaded.recommend(query, k=6)
            assert a.ids == b.ids
            np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)

    def test_a_save_without_profiles_holds_no_users_words_and_answers_alike(
        self, fitted: Recommender, tmp_path: Path
    ) -> None:
        """What the service saves: no user's free text; queries that bring the user's words
        and attributes (the service's, from its database) get the same answers."""
        fitted.save(tmp_path / "model", profiles=False)
        files = [p.read_bytes() for p in (tmp_path / "model").rglob("*") if p.is_file()]
        for words in ("I love the outdoors", "cooking at home"):
            for needle in (words.encode("utf-8"), words.encode("utf-32-le")):
                assert not any(needle in data for data in files), words
        loaded = Recommender.load(tmp_path / "model")
        profile = {"age": "25-34", "occupation": "engineer"}
        alice = UserQuery("alice", "I love the outdoors", profile)
        for query in [alice, *QUERIES[1:]]:
            a, b = fitted.recommend(query, k=6), loaded.recommend(query, k=6)
            assert a.ids == b.ids
            np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)

    def test_explains_each_item_by_its_largest_part(self, fitted: Recommender) -> None:
        """One reason per item, from the part with the largest share, citing only a liked item
        of the query, and nothing at all when nothing may be quoted."""
        for query, subset in itertools.product(QUERIES, (False, True)):
            ids = fitted.recommend(query, k=5).ids
            resolved = fitted.resolve(query)
            reasons = fitted.explain(query, ids, subset=subset)
            assert len(reasons) == len(ids)
            for reason in reasons:
                assert reason.kind in get_args(ReasonKind)
                assert set(reason.shares) == set(fitted.contributions([resolved]))
                assert reason.part == max(reason.shares, key=lambda n: reason.shares[n])
                cited = reason.item_id
                assert cited is None or (reason.kind in LIKED_KINDS and cited in resolved.liked)
            quiet = fitted.explain(query, ids, quotable=UserQuery(), subset=subset)
            assert all(r.item_id is None and not r.features for r in quiet)

    def test_names_its_parts_item_fields_and_encoders(
        self, kind: str, fitted: Recommender, tiny_dataset: Dataset
    ) -> None:
        inner = _inner(fitted)
        hybrid = isinstance(inner, HybridRecommender)
        assert list(fitted.named_parts()) == (list(inner.parts) if hybrid else [kind])
        fields = fitted.item_fields()
        assert set(fields) <= {*tiny_dataset.spec.item_text, *tiny_dataset.spec.item_attributes}
        reads_text = isinstance(fitted, ZeroShotRecommender) or hybrid
        assert bool(fields) == reads_text
        assert bool(fitted.encoders()) == (reads_text or kind == "cf_map")
        for encoder in fitted.encoders():
            assert encoder.encode(["a warm jacket"]).shape == (1, encoder.dim)

    def test_saved_arrays_need_no_pickle(self, fitted: Recommender, tmp_path: Path) -> None:
        fitted.save(tmp_path / "model")
        with np.load(tmp_path / "model" / "arrays.npz", allow_pickle=False) as data:
            assert "_item_ids" in data.files

    def test_planted_near_duplicate_of_a_liked_item_ranks_first(
        self, kind: str, fitted: Recommender
    ) -> None:
        if not FACTORIES[kind][1]:
            pytest.skip(f"{kind} does not read item text")
        fitted.add_items(
            pd.DataFrame(
                {
                    "item_id": ["tent-v2"],
                    "title": ["Ultralight camping tent for two, new edition"],
                    "category": ["outdoor"],
                }
            )
        )
        recs = fitted.recommend(UserQuery(liked=("tent",)), k=3)
        assert recs.ids[0] == "tent-v2"


def test_a_model_with_no_reason_says_so(tiny_dataset: Dataset) -> None:
    model = RandomRecommender(seed=7).fit(tiny_dataset)
    reasons = model.explain(UserQuery(text="a warm jacket", liked=("boots",)), ["jacket", "tent"])
    assert [(r.kind, r.part, r.item_id) for r in reasons] == [("none", "random", None)] * 2


def test_a_separate_user_tower_reads_liked_items_and_new_items_and_round_trips(
    tiny_dataset: Dataset, tmp_path: Path
) -> None:
    model = FineTunedRecommender(HashingEncoder(64), user_encoder=HashingEncoder(64)).fit(
        tiny_dataset
    )
    assert model.liked_item_vectors.shape == model.item_vectors.shape
    new = pd.DataFrame({"item_id": ["poncho"], "title": ["Packable rain poncho"]})
    model.add_items(new)
    row = model.item_ids.rows(["poncho"])
    assert len(model.liked_item_vectors) == len(model.item_ids)
    assert np.abs(model.liked_item_vectors[row]).sum() > 0  # the user tower read it too
    query = UserQuery(liked=("poncho", "jacket"), text="rain")
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert isinstance(loaded, FineTunedRecommender) and loaded.user_encoder is not None
    a, b = model.recommend(query, k=4), loaded.recommend(query, k=4)
    assert a.ids == b.ids
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def test_scoring_some_items_gives_their_scores_among_all(fitted: Recommender) -> None:
    """``score_rows`` (what the service uses on a large catalogue) agrees with ``score``."""
    users = fitted.known_users()[:3]
    queries = [UserQuery(user_id=u) for u in users] + [UserQuery(text="camping tent boots")]
    rows = np.asarray([5, 0, 3, len(fitted.item_ids) - 1])
    fitted.remove_items([fitted.item_ids.id(3)])
    full = fitted.score(queries)[:, rows]
    some = fitted.score_rows(queries, rows)
    assert some.shape == (len(queries), len(rows))
    assert np.array_equal(np.isinf(full), np.isinf(some))
    finite = np.isfinite(full)
    np.testing.assert_allclose(some[finite], full[finite], rtol=1e-5, atol=1e-5)
    proposed = fitted.propose(queries[0], 3)
    wrapped = isinstance(fitted, CandidateRecommender)  # the index's 3 nearest too
    assert proposed.dtype.kind == "i" and len(proposed) <= 3 * (
        1 + len(getattr(_inner(fitted), "parts", {})) + wrapped
    )
    assert all(0 <= r < len(fitted.item_ids) for r in proposed)


def test_scores_beside_a_reference_are_the_rows_scores_and_follow_changed_items(
    fitted: Recommender,
) -> None:
    """``score_with_reference`` (how a hybrid scores a part's candidates beside its fixed
    sample of the catalogue) gives ``score_rows`` of both, to the bit, when asked again (what
    a model kept of the reference rows) and after one of them changed its text and another
    was removed (nothing kept from before)."""
    query = [UserQuery(text="camping tent boots")]
    rows, reference = np.asarray([5, 0]), np.asarray([1, 2, 3, 4])
    for _ in range(2):
        beside = fitted.score_with_reference(query, rows, reference)
        assert np.array_equal(beside, fitted.score_rows(query, np.r_[rows, reference]))
    fitted.add_items(
        pd.DataFrame({"item_id": [fitted.item_ids.id(2)], "title": ["Camping tent boots"]})
    )
    fitted.remove_items([fitted.item_ids.id(3)])
    beside = fitted.score_with_reference(query, rows, reference)
    assert np.array_equal(beside, fitted.score_rows(query, np.r_[rows, reference]))
    assert np.isneginf(beside[0, 4]) and np.isfinite(beside[0, 3])


# ---- tiny data: a new shop's first hours (issue 24.4) ---------------------------------------
def _recipe(name: str) -> Callable[[], Recommender]:
    """The bench's recipe ``name`` with the test encoder: ``hybrid`` is the one ``coldbrew
    recommend`` and the service fit; ``hybrid_sasrec`` adds a network that trains in epochs."""
    from coldbrew.models.recipes import ModelContext, make_model

    return lambda: make_model(name, ModelContext(lambda: HashingEncoder(128), None, seed=42))


TINY_FACTORIES = {
    **{k: f for k, (f, _) in FACTORIES.items()},
    "default_hybrid": _recipe("hybrid"),
    "hybrid_sasrec": _recipe("hybrid_sasrec"),
    "hybrid_counted_transitions": _recipe("hybrid_counted_transitions"),
}


def tiny_shape(base: Dataset, shape: str) -> Dataset:
    """``base`` cut down to one of the shapes a new catalogue has."""
    inter = base.interactions
    if shape == "no user attributes":  # no users table at all
        spec = replace(base.spec, user_text=(), user_attributes=())
        return Dataset(spec, base.items, inter)
    cut = {
        "0 interactions": inter.iloc[:0],
        "1 interaction": inter.iloc[:1],
        "2 interactions": inter.iloc[[0, 3]],  # two users, one like each
        "one user": inter[inter["user_id"] == "alice"],
        "no timestamps": inter.assign(timestamp=np.nan),
    }[shape]
    return base.with_interactions(cut)


TINY_SHAPES = [
    "0 interactions",
    "1 interaction",
    "2 interactions",
    "one user",
    "no timestamps",
    "no user attributes",
]
TINY_QUERIES = [
    UserQuery(text="a tent for camping"),
    UserQuery(attributes={"age": "18-24", "occupation": "student"}),
    UserQuery(liked=("keyboard",)),
    UserQuery(user_id="alice"),
]


@pytest.mark.parametrize("shape", TINY_SHAPES)
@pytest.mark.parametrize("kind", sorted(TINY_FACTORIES))
def test_tiny_data_fits_answers_and_round_trips(
    kind: str, shape: str, tiny_dataset: Dataset, tmp_path: Path
) -> None:
    model = TINY_FACTORIES[kind]().fit(tiny_shape(tiny_dataset, shape))
    loaded = Recommender.load(model.save(tmp_path / "m"))
    for query in TINY_QUERIES:
        recs = model.recommend(query, k=5)
        seen = set(model.resolve(query).liked)
        assert len(recs) == min(5, 12 - len(seen)), query
        assert len(set(recs.ids)) == len(recs) and not set(recs.ids) & seen
        assert set(recs.ids) <= set(model.item_ids)
        again = loaded.recommend(query, k=5)
        assert again.ids == recs.ids, query
        np.testing.assert_allclose(again.scores, recs.scores, rtol=1e-5, atol=1e-6)
    assert loaded.describe() == model.describe()


def test_parts_that_cannot_learn_stay_silent(tiny_dataset: Dataset) -> None:
    """Without interactions the default hybrid answers from the item text alone and says so; the
    collaborative parts weigh nothing, for every kind of user."""
    model = _recipe("hybrid")().fit(tiny_shape(tiny_dataset, "0 interactions"))
    assert isinstance(model, HybridRecommender)
    silent = [n for n, p in model.parts.items() if p.silent_reason is not None]
    learn_from_interactions = {"cf", "cf_f64", "cf_map", "itemknn", "transitions"}
    assert set(silent) == learn_from_interactions | {"popularity", "attribute_popularity"}
    assert model.describe().startswith(
        "hybrid fitted on 0 positive interactions: language model only (lm, lexical); silent: "
    )
    for query in TINY_QUERIES:
        parts = model.contributions([model.resolve(query)])
        assert not any(parts[name].any() for name in silent), query
        assert any(parts[name].any() for name in ("lm", "lexical")), query
    recs = model.recommend(UserQuery(text="ultralight camping tent"), k=1)
    assert recs.ids == ["tent"]


def test_a_part_silent_for_lack_of_order_names_why(tiny_dataset: Dataset) -> None:
    model = _recipe("hybrid")().fit(tiny_shape(tiny_dataset, "no timestamps"))
    assert isinstance(model, HybridRecommender)
    assert "; silent: transitions (no timestamps)" in model.describe()
    assert [n for n, p in model.parts.items() if p.silent_reason] == ["transitions"]
    assert not model.weights[..., list(model.parts).index("transitions")].any()
