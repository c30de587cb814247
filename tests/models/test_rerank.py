"""The diversity and novelty controls: the pure re-ranking, and through Recommender.recommend."""

from __future__ import annotations

import numpy as np
import pytest

from coldbrew.data.schema import Dataset
from coldbrew.eval.metrics import intra_list_similarity
from coldbrew.models.base import UserQuery
from coldbrew.models.baselines import PopularityRecommender
from coldbrew.models.rerank import candidate_pool, pool_size, rerank, with_novelty
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.encoder import HashingEncoder

# six items, best scored first: three near copies of one direction, then three others
VECTORS = np.asarray(
    [[1, 0, 0], [0.99, 0.14, 0], [0.98, 0, 0.2], [0, 1, 0], [0, 0, 1], [0.6, 0.8, 0]],
    dtype=np.float32,
)
VECTORS /= np.linalg.norm(VECTORS, axis=1, keepdims=True)
SCORES = np.asarray([0.9, 0.89, 0.88, 0.5, 0.45, 0.4], dtype=np.float32)
POPULARITY = np.asarray([500, 400, 300, 3, 2, 1], dtype=np.float32)


def test_both_off_keeps_the_model_order() -> None:
    chosen = rerank(SCORES, 4, vectors=VECTORS, popularity=POPULARITY)
    assert chosen.tolist() == [0, 1, 2, 3]


def test_diversity_lowers_intra_list_similarity() -> None:
    plain = rerank(SCORES, 3, vectors=VECTORS)
    diverse = rerank(SCORES, 3, vectors=VECTORS, diversity=1.0)
    assert diverse[0] == 0  # the most relevant still comes first
    assert intra_list_similarity(VECTORS[diverse]) < intra_list_similarity(VECTORS[plain]) - 0.5


def test_diversity_moves_the_list_step_by_step() -> None:
    sims = [
        intra_list_similarity(VECTORS[rerank(SCORES, 3, vectors=VECTORS, diversity=d)])
        for d in (0.0, 0.5, 1.0)
    ]
    assert sims[0] >= sims[1] >= sims[2]
    assert sims[0] > sims[2]


def test_novelty_lowers_mean_popularity() -> None:
    plain = rerank(SCORES, 3, popularity=POPULARITY)
    novel = rerank(SCORES, 3, popularity=POPULARITY, novelty=1.0)
    assert POPULARITY[novel].mean() < POPULARITY[plain].mean()


def test_novelty_is_the_same_knob_at_any_score_scale() -> None:
    small = with_novelty(SCORES, POPULARITY, 0.5)
    large = with_novelty(1000 * SCORES + 7, POPULARITY, 0.5)
    assert np.allclose(small, large)


def test_an_empty_or_short_pool_gives_what_there_is() -> None:
    empty = np.zeros(0, dtype=np.float32)
    both = {"diversity": 0.5, "novelty": 1.0}
    assert len(rerank(empty, 5, vectors=np.zeros((0, 3)), popularity=empty, **both)) == 0
    short = rerank(SCORES[:2], 5, vectors=VECTORS[:2], popularity=POPULARITY[:2], **both)
    assert sorted(short.tolist()) == [0, 1]


def test_pool_holds_the_best_finite_scores() -> None:
    scores = np.asarray([0.1, -np.inf, 0.9, 0.5], dtype=np.float32)
    assert candidate_pool(scores, 2).tolist() == [2, 3, 0]
    assert pool_size(3) == 50 and pool_size(20) == 100


@pytest.mark.parametrize(
    ("diversity", "novelty"), [(-0.1, 0.0), (1.5, 0.0), (0.0, -1.0), (0.0, float("nan"))]
)
def test_out_of_range_controls_are_refused(diversity: float, novelty: float) -> None:
    with pytest.raises(ValueError, match=r"diversity|novelty"):
        rerank(
            SCORES, 3, vectors=VECTORS, popularity=POPULARITY, diversity=diversity, novelty=novelty
        )


def test_a_control_without_its_input_is_refused() -> None:
    with pytest.raises(ValueError, match="item vector"):
        rerank(SCORES, 3, diversity=0.5)
    with pytest.raises(ValueError, match="popularity"):
        rerank(SCORES, 3, novelty=0.5)


# ---- through the Recommender API ---------------------------------------------------------


@pytest.fixture
def zeroshot(tiny_dataset: Dataset) -> ZeroShotRecommender:
    return ZeroShotRecommender(HashingEncoder(64)).fit(tiny_dataset)


QUERY = UserQuery(text="insulated winter hiking gear")


def _list_similarity(model: ZeroShotRecommender, ids: list[str]) -> float:
    return intra_list_similarity(model.text_vectors(model.item_ids.rows(ids)))


def test_recommend_with_controls_off_is_unchanged(zeroshot: ZeroShotRecommender) -> None:
    plain = zeroshot.recommend(QUERY, k=6)
    off = zeroshot.recommend(QUERY, k=6, diversity=0.0, novelty=0.0)
    assert off.ids == plain.ids
    assert np.array_equal(off.scores, plain.scores)


def test_recommend_diversity_lowers_similarity(zeroshot: ZeroShotRecommender) -> None:
    plain = zeroshot.recommend(QUERY, k=4)
    diverse = zeroshot.recommend(QUERY, k=4, diversity=1.0)
    assert diverse.ids[0] == plain.ids[0]
    assert _list_similarity(zeroshot, diverse.ids) < _list_similarity(zeroshot, plain.ids)


def test_recommend_novelty_lowers_popularity(zeroshot: ZeroShotRecommender) -> None:
    popularity = zeroshot.item_popularity()
    plain = zeroshot.recommend(QUERY, k=4)
    novel = zeroshot.recommend(QUERY, k=4, novelty=2.0)
    mean = lambda ids: popularity[zeroshot.item_ids.rows(ids)].mean()  # noqa: E731
    assert mean(novel.ids) < mean(plain.ids)


def test_item_popularity_counts_positives(zeroshot: ZeroShotRecommender) -> None:
    popularity = zeroshot.item_popularity()
    # tent: alice 5 and carol 4; keyboard: bob 5 (dave's 2 is not a positive)
    assert popularity[zeroshot.item_ids.row("tent")] == 2
    assert popularity[zeroshot.item_ids.row("keyboard")] == 1
    assert popularity[zeroshot.item_ids.row("shirt")] == 0


def test_recommend_refuses_bad_controls(zeroshot: ZeroShotRecommender) -> None:
    with pytest.raises(ValueError, match="diversity"):
        zeroshot.recommend(QUERY, diversity=2.0)
    with pytest.raises(ValueError, match="novelty"):
        zeroshot.recommend(QUERY, novelty=-0.5)


def test_diversity_needs_a_model_with_text_vectors(tiny_dataset: Dataset) -> None:
    model = PopularityRecommender().fit(tiny_dataset)
    assert len(model.recommend(UserQuery(user_id="alice"), k=3, novelty=1.0)) == 3
    with pytest.raises(ValueError, match="text vectors"):
        model.recommend(UserQuery(user_id="alice"), k=3, diversity=0.5)
