"""Scoring only the candidates (:class:`CandidateRecommender`) with fewer of them than items:
the contract test holds it with as many as the catalogue."""

from __future__ import annotations

import numpy as np
import pytest

from coldbrew.data.schema import Dataset
from coldbrew.models import PopularityRecommender, UserQuery, ZeroShotRecommender
from coldbrew.models.candidates import CandidateRecommender
from coldbrew.text import HashingEncoder


def _wrapped(tiny_dataset: Dataset, n: int) -> CandidateRecommender:
    return CandidateRecommender(ZeroShotRecommender(HashingEncoder(64)), n=n).fit(tiny_dataset)


def test_only_the_nearest_items_are_ranked_by_the_wrapped_models_scores(
    tiny_dataset: Dataset,
) -> None:
    model = _wrapped(tiny_dataset, n=3)
    query = UserQuery(text="a warm jacket for winter")
    rows = model.candidates(query, 3, set())
    assert len(rows) == 3  # a zero-shot model proposes nothing: the index's 3 nearest
    whole = model.wrapped.recommend(query, k=3)
    assert sorted(model.item_ids.ids(rows)) == sorted(whole.ids)  # the same vectors, exact
    recs = model.recommend(query, k=5)
    assert recs.ids == whole.ids  # three candidates: only three answers
    np.testing.assert_allclose(recs.scores, whole.scores, rtol=1e-6)


def test_excluded_items_leave_room_for_the_next_nearest(tiny_dataset: Dataset) -> None:
    model = _wrapped(tiny_dataset, n=3)
    query = UserQuery(text="a warm jacket for winter")
    first = model.recommend(query, k=3).ids
    again = model.recommend(query, k=3, exclude=first[:1]).ids
    assert first[0] not in again and len(again) == 3


def test_a_small_allowed_subset_is_scored_whole(tiny_dataset: Dataset) -> None:
    model = _wrapped(tiny_dataset, n=1)
    allowed = ["boots", "tent", "mouse", "skillet"]  # 4 = 4 * n: all of them, not 1
    recs = model.recommend(UserQuery(text="camping"), k=10, candidates=allowed)
    assert sorted(recs.ids) == sorted(allowed)


def test_a_model_without_a_language_model_ranks_what_it_proposes(
    tiny_dataset: Dataset,
) -> None:
    model = CandidateRecommender(PopularityRecommender(), n=2).fit(tiny_dataset)
    assert model.index is None
    recs = model.recommend(UserQuery(text="anything"), k=5)
    assert recs.ids == model.wrapped.recommend(UserQuery(text="anything"), k=2).ids


def test_n_must_be_positive() -> None:
    with pytest.raises(ValueError, match="n must be"):
        CandidateRecommender(PopularityRecommender(), n=0)
