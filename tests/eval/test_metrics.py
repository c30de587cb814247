"""Metrics against hand-computed values, edge cases included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coldbrew.eval.metrics import (
    average_ranks,
    bootstrap_ci,
    coverage_at_k,
    f1_at_k,
    hit_rate_at_k,
    intra_list_similarity,
    mean_metric,
    mrr_at_k,
    ndcg_at_k,
    ndcg_at_k_scores,
    ndcg_of_hits,
    ndcg_of_rank,
    popularity_percentile_at_k,
    popularity_percentiles,
    precision_at_k,
    recall_at_k,
    top_hits,
)
from coldbrew.index.exact import top_k

RANKED = [["a", "b", "c", "d"]]
RELEVANT = [{"b", "d", "x"}]  # "x" is relevant but never ranked
L2_3 = 1 / math.log2(3)  # discount at rank 2


def test_hand_computed_at_3() -> None:
    assert recall_at_k(RANKED, RELEVANT, 3)[0] == pytest.approx(1 / 3)
    assert precision_at_k(RANKED, RELEVANT, 3)[0] == pytest.approx(1 / 3)
    assert f1_at_k(RANKED, RELEVANT, 3)[0] == pytest.approx(1 / 3)
    assert hit_rate_at_k(RANKED, RELEVANT, 3)[0] == 1.0
    assert mrr_at_k(RANKED, RELEVANT, 3)[0] == pytest.approx(0.5)
    ideal = 1 + L2_3 + 0.5
    assert ndcg_at_k(RANKED, RELEVANT, 3)[0] == pytest.approx(L2_3 / ideal)


def test_hand_computed_at_4() -> None:
    assert recall_at_k(RANKED, RELEVANT, 4)[0] == pytest.approx(2 / 3)
    assert precision_at_k(RANKED, RELEVANT, 4)[0] == pytest.approx(0.5)
    assert f1_at_k(RANKED, RELEVANT, 4)[0] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    dcg = L2_3 + 1 / math.log2(5)  # hits at ranks 2 and 4
    assert ndcg_at_k(RANKED, RELEVANT, 4)[0] == pytest.approx(dcg / (1 + L2_3 + 0.5))


def test_no_relevant_items_give_nan_and_are_skipped_in_the_mean() -> None:
    ranked = [["a", "b"], ["a", "b"]]
    relevant: list[set[str]] = [set(), {"a"}]
    for fn in (recall_at_k, precision_at_k, f1_at_k, hit_rate_at_k, mrr_at_k, ndcg_at_k):
        values = fn(ranked, relevant, 2)
        assert math.isnan(values[0]) and values[1] > 0
        assert mean_metric(values) == values[1]
    assert mean_metric(np.array([np.nan])) == 0.0


def test_fewer_candidates_than_k() -> None:
    ranked, relevant = [["a"]], [{"a"}]
    assert precision_at_k(ranked, relevant, 10)[0] == pytest.approx(0.1)  # divides by k
    assert recall_at_k(ranked, relevant, 10)[0] == 1.0
    assert ndcg_at_k(ranked, relevant, 10)[0] == 1.0
    assert mrr_at_k(ranked, relevant, 10)[0] == 1.0
    assert f1_at_k(ranked, relevant, 10)[0] == pytest.approx(2 * 0.1 / 1.1)
    assert recall_at_k([[]], [{"a"}], 5)[0] == 0.0  # an empty ranking finds nothing


def test_no_hit_gives_zero_not_nan() -> None:
    assert f1_at_k([["a"]], [{"b"}], 1)[0] == 0.0
    assert ndcg_at_k([["a"]], [{"b"}], 1)[0] == 0.0


def test_score_ties_rank_the_lower_index_first() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1]])
    assert top_k(scores, 4).tolist() == [[1, 3, 0, 2]]


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(RANKED, RELEVANT, 0)
    with pytest.raises(ValueError, match="ranked lists"):
        recall_at_k(RANKED, [], 5)
    with pytest.raises(ValueError, match="catalogue_size"):
        coverage_at_k(RANKED, 0, 5)


def test_coverage() -> None:
    ranked = [["a", "b"], ["b", "c"]]
    assert coverage_at_k(ranked, 4, 1) == pytest.approx(0.5)
    assert coverage_at_k(ranked, 4, 2) == pytest.approx(0.75)
    assert coverage_at_k([[]], 4, 2) == 0.0


def test_popularity_percentiles_share_ties() -> None:
    pct = popularity_percentiles({"a": 5, "b": 1, "c": 1, "d": 0})
    assert pct == {"a": 1.0, "b": 0.5, "c": 0.5, "d": 0.0}
    values = popularity_percentile_at_k([["a", "d"], ["b", "zz"], []], pct, 2)
    np.testing.assert_allclose(values[:2], [0.5, 0.25])  # unknown items count as 0
    assert math.isnan(values[2])


def test_bootstrap_interval() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(200), [np.nan]])
    low, high = bootstrap_ci(values, seed=1)
    assert low < np.nanmean(values) < high
    assert high - low < 0.2
    assert bootstrap_ci(values, seed=1) == (low, high)  # seeded
    assert bootstrap_ci(np.full(5, 0.3)) == pytest.approx((0.3, 0.3))
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([np.nan])))


@pytest.mark.parametrize(("width", "k"), [(7, 20), (20, 20), (300, 20), (50, 10)])
def test_ndcg_over_score_rows_matches_the_per_user_ndcg(width: int, k: int) -> None:
    rng = np.random.default_rng(width)
    scores = rng.standard_normal((60, width))
    scores[rng.random(scores.shape) < 0.2] = -np.inf  # may not rank
    relevant = rng.random(scores.shape) < 0.15
    outside = rng.integers(0, 4, len(scores))  # relevant items the matrix does not hold
    outside[:5] = 0
    relevant[:5] = False  # users without relevant items: NaN
    n_relevant = (relevant & np.isfinite(scores)).sum(axis=1) + outside
    ids = np.asarray([f"i{j}" for j in range(width)])
    ranked = []
    for row in scores:
        order = np.argsort(-row, kind="stable")
        ranked.append(list(ids[order[np.isfinite(row[order])]]))
    wanted = [
        set(ids[rel & np.isfinite(row)]) | {f"outside{j}" for j in range(n)}
        for row, rel, n in zip(scores, relevant, outside)
    ]
    per_user = ndcg_at_k(ranked, wanted, k)
    vectorised = ndcg_at_k_scores(scores, relevant, n_relevant, k)
    np.testing.assert_allclose(vectorised, per_user, rtol=1e-12)
    assert (np.isnan(vectorised) == (n_relevant == 0)).all() and np.isnan(vectorised[:5]).all()
    assert np.nanmax(vectorised) > 0


def test_ndcg_of_hits_rejects_a_matrix_wider_than_k() -> None:
    assert ndcg_of_hits(np.array([[True, False]]), np.array([1]), 2)[0] == 1.0
    with pytest.raises(ValueError, match="at most 2 columns"):
        ndcg_of_hits(np.zeros((1, 3), dtype=bool), np.array([1]), 2)
    with pytest.raises(ValueError, match="shape"):
        ndcg_at_k_scores(np.zeros((1, 3)), np.zeros((1, 2), dtype=bool), np.array([1]), 2)


def test_ndcg_of_one_relevant_items_rank_by_hand() -> None:
    # rank 1: 1; rank 3: 1/log2(4) = 0.5; past k, or not ranked (0): 0
    np.testing.assert_array_equal(ndcg_of_rank(np.array([1, 3, 4, 0]), 3), [1.0, 0.5, 0.0, 0.0])
    # the same as the per-user NDCG of a ranked list holding that one item
    ranked = [["x", "a", "b"], ["a", "b", "x"], ["a", "b", "c"]]
    expected = ndcg_at_k(ranked, [{"x"}] * 3, 3)
    np.testing.assert_array_equal(ndcg_of_rank(np.array([1, 3, 0]), 3), expected)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_of_rank(np.array([1]), 0)


def test_average_ranks_share_ties_as_scipy_does() -> None:
    from scipy.stats import rankdata  # the reference; coldbrew itself no longer imports it

    assert average_ranks(np.array([10.0, 20.0, 10.0, 5.0])).tolist() == [2.5, 4.0, 2.5, 1.0]
    assert average_ranks(np.zeros(0)).tolist() == []
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 50, 777):
        values = rng.integers(0, max(n // 4, 1) + 1, n).astype(np.float64)
        assert np.array_equal(average_ranks(values), rankdata(values, method="average")), n


def test_intra_list_similarity_by_hand() -> None:
    same = np.asarray([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    apart = np.asarray([[1.0, 0.0], [0.0, 1.0]])
    mixed = np.asarray([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # pairs: 1, 0, 0
    assert intra_list_similarity(same) == pytest.approx(1.0)
    assert intra_list_similarity(apart) == pytest.approx(0.0)
    assert intra_list_similarity(mixed) == pytest.approx(1 / 3)
    assert math.isnan(intra_list_similarity(same[:1]))


def test_top_hits_break_ties_by_column_whatever_the_sort_kernel() -> None:
    """Equal scores at the k-th place: the lowest columns win, as a stable full sort ranks them
    (argpartition's choice among them differs between CPUs' sort kernels)."""
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 4, size=(50, 40)).astype(np.float32)  # ties everywhere
    scores[0, :] = 1.0  # a row of one value
    scores[1, 5] = np.nan  # NaN ranks as -inf
    relevant = rng.random((50, 40)) < 0.3
    for k in (1, 5, 20, 40):
        reference = np.argsort(-np.nan_to_num(scores, nan=-np.inf), axis=1, kind="stable")[:, :k]
        expected = np.take_along_axis(relevant, reference, axis=1)
        expected &= np.isfinite(np.take_along_axis(scores, reference, axis=1))
        np.testing.assert_array_equal(top_hits(scores, relevant, k), expected)
