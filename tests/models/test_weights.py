"""The weight grid (:func:`coldbrew.models.weights.simplex_grid`): every weighting in steps,
summing to one, as the brute-force filter of all share tuples finds them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from coldbrew.models.blend import Prepared
from coldbrew.models.weights import KNOWN, NEW, USER_EDGES, USER_KINDS, WeightSearch, simplex_grid


def brute_force(n_parts: int, units: int, max_parts: int | None) -> set[tuple[int, ...]]:
    return {
        row
        for row in itertools.product(range(units + 1), repeat=n_parts)
        if sum(row) == units and sum(w > 0 for w in row) <= (max_parts or n_parts)
    }


@pytest.mark.parametrize(
    ("n_parts", "step", "max_parts"), [(1, 0.5, None), (3, 0.25, None), (4, 0.2, 2), (5, 0.1, 3)]
)
def test_the_grid_is_every_weighting_in_steps_once_in_order(
    n_parts: int, step: float, max_parts: int | None
) -> None:
    grid = simplex_grid(n_parts, step, max_parts)
    units = round(1 / step)
    rows = [tuple(int(w) for w in np.rint(row * units)) for row in grid]
    assert set(rows) == brute_force(n_parts, units, max_parts)
    assert len(rows) == len(set(rows)) and rows == sorted(rows)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0, rtol=1e-6)


def test_a_wide_fine_grid_is_built_without_enumerating_every_tuple() -> None:
    # nine parts at step 0.1: C(18, 8) weightings (the filter would walk 10^9 tuples)
    assert len(simplex_grid(9, 0.1)) == 43758


SHAPE_PARTS = ("cf", "transitions")


def _returning_users(p_lose: float, n: int = 100, candidates: int = 30) -> Prepared:
    """Returning users' queries of both shapes, each with one relevant item (column 0) among
    ``candidates``. Latest-shaped ones (``n``): each part ranks one distractor of its own first
    and the relevant item second, so their blend ranks it first. Random-shaped ones (``n``):
    ``cf`` ranks the relevant item first; in a share ``p_lose`` of them ``transitions`` ranks it
    last, below two distractors ``cf`` ranks next, and the blend ranks it third; elsewhere both
    rank it first."""
    fill = -np.arange(1, candidates - 2, dtype=np.float32)  # the other candidates, alike
    rows: dict[str, list[list[float]]] = {"cf": [], "transitions": []}
    for q in range(2 * n):
        if q >= n:  # latest: relevant, a, b
            cf, tr = [0.9, 1.0, 0.0], [0.9, 0.0, 1.0]
        elif q < round(p_lose * n):
            cf, tr = [1.0, 0.9, 0.8], [-100.0, 1.0, 0.9]
        else:
            cf, tr = [1.0, 0.5, 0.0], [1.0, 0.0, 0.5]
        rows["cf"].append([*cf, *fill])
        rows["transitions"].append([*tr, *fill])
    shape = (2 * n, candidates)
    relevant = np.zeros(shape, dtype=bool)
    relevant[:, 0] = True
    return Prepared(
        parts=tuple(np.asarray(rows[p], dtype=np.float32) for p in SHAPE_PARTS),
        ties=np.zeros(shape, dtype=np.float32),
        cells=np.ones(shape, dtype=np.int64),
        relevant=relevant,
        n_relevant=np.ones(2 * n, dtype=np.int64),
        pad=np.zeros(shape, dtype=bool),
        buckets=np.full(2 * n, 4, dtype=np.int64),
        known=np.full(2 * n, KNOWN, dtype=np.int64),
        flat=np.zeros(2, dtype=bool),
        silent=np.zeros(2, dtype=bool),
        latest=np.arange(2 * n) >= n,
    )


def _chosen(
    prep: Prepared,
    every_shape: bool,
    kind: int = KNOWN,
    group: str = "bucket10",
    each_shape: bool = False,
) -> tuple[np.ndarray, dict]:
    weights = np.zeros((len(USER_EDGES), 2, len(USER_KINDS), 2), dtype=np.float32)
    search = WeightSearch(
        SHAPE_PARTS, weights, 0.5, None, 30, 0, every_shape=every_shape, each_shape=each_shape
    )
    report = search.fit({1: [prep]})
    return search.weights[4, 1, kind], report.get(f"cell1/{USER_KINDS[kind]}/{group}", {})


def test_returning_users_keep_the_best_part_when_the_blend_loses_one_shape() -> None:
    prep = _returning_users(p_lose=0.2)
    # the pool: cf 0.5 * 1 + 0.5 * 0.63 = 0.82 is the best part; the blend 0.5 * 0.9 + 0.5 * 1
    blend, report = _chosen(prep, every_shape=False)
    np.testing.assert_array_equal(blend, [0.5, 0.5])  # today's rule takes it
    assert "shape_gain_random" not in report
    kept, report = _chosen(prep, every_shape=True)
    np.testing.assert_array_equal(kept, [1.0, 0.0])
    # the bucket's own search, against the cell's weights (cf alone), wins the pool but not
    # the random shape
    assert report["oof_gain"] > report["oof_gain_se"]
    assert report["shape_gain_random"] < -report["shape_se_random"]
    assert report["shape_gain_latest"] > report["shape_se_latest"]
    # the search over every bucket reports itself, and what each pick scored on each shape
    _, whole = _chosen(prep, every_shape=True, group="all")
    assert whole["queries"] == 200 and whole["best_part"] == "cf"
    random, latest = whole["by_shape"]["random"], whole["by_shape"]["latest"]
    assert random["queries"] == latest["queries"] == 100
    assert random["candidate"] < random["reference"] == random["chosen"] == 1.0
    assert latest["candidate"] > latest["reference"]
    assert _chosen(prep, every_shape=False, group="all")[1] == {}


def test_a_blend_that_loses_no_shape_is_taken_with_the_option() -> None:
    prep = _returning_users(p_lose=0.0)
    blend, _ = _chosen(prep, every_shape=True)
    np.testing.assert_array_equal(blend, [0.5, 0.5])
    _, whole = _chosen(prep, every_shape=True, group="all")  # judged there, and kept
    assert whole["shape_gain_random"] == 0.0 and whole["shape_gain_latest"] > 0.3


def test_only_returning_users_searches_are_judged_by_shape() -> None:
    prep = _returning_users(p_lose=0.2)
    new = Prepared(**{**prep.__dict__, "known": np.full(len(prep.known), NEW, dtype=np.int64)})
    blend, report = _chosen(new, every_shape=True, kind=NEW)
    np.testing.assert_array_equal(blend, [0.5, 0.5])
    assert "shape_gain_random" not in report


def test_each_shape_weighs_each_shape_against_its_own_best_part() -> None:
    # cf is the best single part on both shapes (on the latest shape tied with transitions):
    # a blend that loses cf's random-shaped queries (0.9 of cf) is not taken...
    kept, whole = _chosen(_returning_users(p_lose=0.2), False, group="all", each_shape=True)
    np.testing.assert_array_equal(kept, [1.0, 0.0])
    assert whole["shape_ratio_random"] == whole["shape_ratio_latest"] == 1.0
    assert whole["shape_best_part_latest"] == pytest.approx(1 / np.log2(3))
    # ...one that ties it there and wins the latest shape is
    blend, whole = _chosen(_returning_users(p_lose=0.0), False, group="all", each_shape=True)
    np.testing.assert_array_equal(blend, [0.5, 0.5])
    assert whole["shape_ratio_latest"] == pytest.approx(np.log2(3))
    # new users are searched as before
    prep = _returning_users(p_lose=0.2)
    new = Prepared(**{**prep.__dict__, "known": np.full(len(prep.known), NEW, dtype=np.int64)})
    taken, report = _chosen(new, every_shape=False, kind=NEW, each_shape=True)
    np.testing.assert_array_equal(taken, [0.5, 0.5])
    assert "shape_ratio_random" not in report


def test_each_shape_searches_queries_of_one_shape_as_today() -> None:
    # data without timestamps (or items without interactions) ask no latest-shaped queries:
    # the search, and every bucket's, is the pooled one
    for p_lose in (0.0, 0.2):
        prep = _returning_users(p_lose=p_lose)
        one = Prepared(**{**prep.__dict__, "latest": np.zeros(len(prep.known), dtype=bool)})
        today, _ = _chosen(one, every_shape=False)
        each, report = _chosen(one, every_shape=False, each_shape=True)
        np.testing.assert_array_equal(each, today)
        assert "shape_ratio_random" not in report
