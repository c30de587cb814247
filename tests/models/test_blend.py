"""One blend (:mod:`coldbrew.models.blend`): weights x parts -> scores -> NDCG@20 on a case
small enough to check by hand (the hybrid's weight choice that rests on it is pinned in
``test_hybrid.py``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from coldbrew.models.blend import Prepared, blend_ndcg, blend_recall, blend_scores
from coldbrew.models.weights import USER_EDGES

D2, D3 = 1 / np.log2(3), 1 / np.log2(4)
"""DCG's discounts of ranks 2 and 3 (rank 1's is 1)."""


def hand_case(cells: list[int] | None = None) -> Prepared:
    """Two queries over three candidates and two parts. Query 0 wants candidate 2, which part
    ``a`` ranks last and part ``b`` first. Query 1 wants candidates 0 and 1 and a third item
    outside its candidates; its fourth candidate is padding (scored 9, never ranked)."""
    a = np.asarray([[3, 2, 1, 0], [0, 1, 2, 9]], dtype=np.float32)
    b = np.asarray([[1, 2, 3, 0], [2, 1, 0, 9]], dtype=np.float32)
    relevant = np.asarray([[0, 0, 1, 0], [1, 1, 0, 0]], dtype=bool)
    pad = np.asarray([[0, 0, 0, 1], [0, 0, 0, 1]], dtype=bool)
    return Prepared(
        parts=(a, b),
        ties=np.zeros((2, 4), dtype=np.float32),
        cells=np.asarray([cells or [1, 1, 1, 1]] * 2),
        relevant=relevant,
        n_relevant=np.asarray([1, 3]),
        pad=pad,
        buckets=np.asarray([1, 1]),
        known=np.asarray([1, 1]),
        flat=np.zeros(2, dtype=bool),
        silent=np.zeros(2, dtype=bool),
    )


def test_ndcg_of_each_part_alone_by_hand() -> None:
    prep = hand_case()
    ideal = 1 + D2 + D3  # query 1 has three relevant items
    # a: query 0's item third; query 1's items second and third
    np.testing.assert_allclose(blend_ndcg(prep, np.asarray([1.0, 0.0])), [D3, (D2 + D3) / ideal])
    # b: query 0's item first; query 1's items first and second
    np.testing.assert_allclose(blend_ndcg(prep, np.asarray([0.0, 1.0])), [1.0, (1 + D2) / ideal])
    # a grid gives one row per point
    grid = np.asarray([[1.0, 0.0], [0.25, 0.75], [0.75, 0.25]], dtype=np.float32)
    values = blend_ndcg(prep, grid)
    assert values.shape == (3, 2)
    # 0.25a + 0.75b puts query 0's item first (2.5 > 2 > 1.5); 0.75a + 0.25b last
    assert values[1, 0] == 1.0 and values[2, 0] == pytest.approx(D3)


def test_recall_of_each_part_alone_by_hand() -> None:
    prep = hand_case()
    # a at k=2: query 0's item third (missed); query 1's second of three relevant found
    np.testing.assert_allclose(blend_recall(prep, np.asarray([1.0, 0.0]), k=2), [0.0, 1 / 3])
    # b at k=2: query 0's item first; query 1's two candidates first and second, of three
    np.testing.assert_allclose(blend_recall(prep, np.asarray([0.0, 1.0]), k=2), [1.0, 2 / 3])
    # padding never counts, even at a cut-off past the real candidates
    np.testing.assert_allclose(blend_recall(prep, np.asarray([1.0, 0.0]), k=4), [1.0, 2 / 3])
    grid = np.asarray([[1.0, 0.0], [0.25, 0.75]], dtype=np.float32)
    np.testing.assert_allclose(blend_recall(prep, grid, k=1), [[0.0, 0.0], [1.0, 1 / 3]])
    # a query with nothing to find has no value
    empty = replace(prep, relevant=np.zeros_like(prep.relevant), n_relevant=np.asarray([0, 0]))
    assert np.isnan(blend_recall(empty, np.asarray([1.0, 0.0]))).all()


def test_scores_are_the_weighted_sum_with_padding_never_ranked() -> None:
    prep = hand_case()
    scores = blend_scores(prep, np.asarray([0.5, 0.5]))
    np.testing.assert_array_equal(scores[:, :3], [[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]])
    assert np.isneginf(scores[:, 3]).all()


def test_the_hybrid_table_weighs_each_candidate_by_its_item_cell() -> None:
    # candidate 2 is a new item (cell 0), scored by part b; the others by part a
    prep = hand_case(cells=[1, 1, 0, 1])
    table = np.zeros((len(USER_EDGES), 2, 2, 2), dtype=np.float32)
    table[:, 1] = [1.0, 0.0]
    table[:, 0] = [0.0, 1.0]
    np.testing.assert_array_equal(blend_scores(prep, table)[0, :3], [3.0, 2.0, 3.0])
    # query 0's item ties with candidate 0 at 3: a tie-break offset decides
    prep = replace(prep, ties=np.asarray([[0, 0, 1e-3, 0]] * 2, dtype=np.float32))
    assert blend_ndcg(prep, table)[0] == 1.0
    # a grid of tables, each point alike to the same table scored alone
    grid = np.stack([table, np.roll(table, 1, axis=-1), table])
    values = blend_ndcg(prep, grid)
    for point, row in zip(grid, values, strict=True):
        np.testing.assert_array_equal(row, blend_ndcg(prep, point))
    # the other way round (a on the new item, b on the others): 1.001 behind candidate 1's 2
    assert values[1, 0] == pytest.approx(D2)


def test_cuts_keep_rows_and_columns_aligned() -> None:
    prep = hand_case()
    sub = prep.take_parts([1]).take_queries(np.asarray([False, True]))
    assert len(sub.parts) == 1 and sub.parts[0].shape == (1, 4)
    np.testing.assert_array_equal(sub.parts[0], prep.parts[1][1:])
    np.testing.assert_array_equal(sub.n_relevant, [3])
    assert blend_ndcg(sub, np.ones(1))[0] == blend_ndcg(prep, np.asarray([0.0, 1.0]))[1]


def test_weights_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="2 parts"):
        blend_scores(hand_case(), np.ones(3))
    with pytest.raises(ValueError, match="dimensions"):
        blend_ndcg(hand_case(), np.ones((1, 1, 2)))
