"""Choosing a blend on validation: a mixture that only wins by the luck of the grid stays out."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from coldbrew.models.blend import Prepared, blend_ndcg
from coldbrew.models.selection import (
    always,
    best_single,
    each_shape_at_its_best,
    keep_unless_beaten,
    keep_unless_beaten_on_every_shape,
    out_of_fold_gain,
)
from coldbrew.models.weights import (
    USER_EDGES,
    USER_KINDS,
    WeightSearch,
    one_standard_error_choice,
    simplex_grid,
)


def _lucky_grid(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Part 0 is clearly the best single part; 200 mixtures of it with part 1 score like part 0
    plus independent noise per query, so the best of them wins in sample by luck alone."""
    rng = np.random.default_rng(seed)
    queries = 300
    grid = np.array([[1.0, 0.0], [0.0, 1.0], *[[1 - w, w] for w in np.linspace(0.01, 0.5, 200)]])
    good = rng.random(queries)
    scores = np.vstack([good, good - 0.3, good[None, :] + rng.normal(0.0, 0.2, (200, queries))])
    return grid, scores


def test_a_part_that_is_clearly_best_is_kept_over_a_lucky_mixture() -> None:
    grid, scores = _lucky_grid()
    # the old rule alone takes a mixture: its in-sample lead is beyond one standard error
    lucky = one_standard_error_choice(scores, grid)
    assert (grid[lucky] > 0).sum() == 2
    # out of fold the mixture's lead vanishes, so the best single part stays
    gain, se = out_of_fold_gain(
        scores, lambda s: one_standard_error_choice(s, grid), best_single(grid), 1
    )
    assert gain <= se
    chosen, _, _ = keep_unless_beaten(
        scores, lambda s: one_standard_error_choice(s, grid), best_single(grid), seed=1
    )
    assert chosen == 0


def test_a_mixture_that_really_wins_replaces_the_reference() -> None:
    _, scores = _lucky_grid()
    scores[50] += 0.05  # one mixture is truly better on every query
    chosen, gain, se = keep_unless_beaten(
        scores, lambda s: int(np.argmax(s.mean(axis=1))), always(0), 1
    )
    assert chosen == 50 and gain > se


def test_too_few_queries_keep_the_reference() -> None:
    grid, scores = _lucky_grid()
    assert out_of_fold_gain(scores[:, :3], best_single(grid), always(1), 0)[1] == np.inf
    assert keep_unless_beaten(scores[:, :3], best_single(grid), always(1), 0)[0] == 1


PRIOR_PARTS = ("popularity", "attribute_popularity")


def _new_users(better: float, worse: float, seed: int = 0) -> Prepared:
    """300 new users who revealed nothing, each wanting one of 40 candidates: popularity ranks
    it uniformly among the first 29; attribute popularity moves it up three places with
    probability ``better`` and down three with probability ``worse``."""
    rng = np.random.default_rng(seed)
    n, c = 300, 40
    r_pop = rng.integers(1, c - 10, n)
    u = rng.random(n)
    r_attr = np.clip(r_pop - 3 * (u < better) + 3 * (u > 1 - worse), 1, c - 1)
    others = np.tile(-np.arange(1, c, dtype=np.float32), (n, 1))

    def part(rank: np.ndarray) -> np.ndarray:
        return np.column_stack([-(rank - 0.5), others]).astype(np.float32)

    relevant = np.zeros((n, c), dtype=bool)
    relevant[:, 0] = True
    return Prepared(
        parts=(part(r_pop), part(r_attr)),
        ties=np.zeros((n, c), dtype=np.float32),
        cells=np.ones((n, c), dtype=np.int64),
        relevant=relevant,
        n_relevant=np.ones(n, dtype=np.int64),
        pad=np.zeros((n, c), dtype=bool),
        buckets=np.zeros(n, dtype=np.int64),
        known=np.zeros(n, dtype=np.int64),
        flat=np.zeros(2, dtype=bool),
        silent=np.zeros(2, dtype=bool),
    )


def _new_user_weights(prep: Prepared) -> dict[str, float]:
    weights = np.zeros((len(USER_EDGES), 2, len(USER_KINDS), len(PRIOR_PARTS)), dtype=np.float32)
    search = WeightSearch(PRIOR_PARTS, weights, 0.5, None, 30, seed=0)
    search.fit({1: [prep]})
    return dict(zip(PRIOR_PARTS, search.weights[0, 1, 0].tolist(), strict=True))


def test_a_steady_small_lift_over_popularity_reaches_new_users() -> None:
    prep = _new_users(better=0.15, worse=0.05)
    grid = np.asarray([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=np.float32)
    ndcg = blend_ndcg(prep, grid)
    # with popularity also the candidate's tie default, the halves rarely leave it: no pass
    gain, se = out_of_fold_gain(ndcg, lambda s: one_standard_error_choice(s, grid, 0), always(0), 0)
    assert gain <= se
    # judged once, out of fold, the lift passes
    assert _new_user_weights(prep) == {"popularity": 0.0, "attribute_popularity": 1.0}


def test_new_users_keep_popularity_without_a_lift() -> None:
    for better, worse in ((0.1, 0.1), (0.05, 0.15)):
        weights = _new_user_weights(_new_users(better, worse))
        assert weights == {"popularity": 1.0, "attribute_popularity": 0.0}


@pytest.mark.parametrize("seed, scale", [(3, 0.3), (15, 3.0), (20, 0.3), (36, 0.3)])
def test_new_users_get_no_blend_with_a_part_that_only_adds_noise(seed: int, scale: float) -> None:
    """A steady lift over popularity, and a third part of pure noise that a blend with the
    lift led by chance on these draws: a blend must beat the best single part out of fold
    before it replaces it for new users who revealed nothing, as everywhere else."""
    prep = _new_users(better=0.3, worse=0.05, seed=seed)
    noise = scale * np.random.default_rng(100 + seed).standard_normal(prep.parts[0].shape)
    prep = replace(
        prep,
        parts=(*prep.parts, noise.astype(np.float32)),
        flat=np.zeros(3, dtype=bool),
        silent=np.zeros(3, dtype=bool),
    )
    parts = (*PRIOR_PARTS, "noise")
    grid = simplex_grid(3, 0.5)
    lucky = one_standard_error_choice(blend_ndcg(prep, grid), grid)  # the old candidate
    assert grid[lucky][2] > 0  # took the noise in
    weights = np.zeros((len(USER_EDGES), 2, len(USER_KINDS), 3), dtype=np.float32)
    search = WeightSearch(parts, weights, 0.5, None, 30, seed=0)
    search.fit({1: [prep]})
    np.testing.assert_array_equal(search.weights[0, 1, 0], [0.0, 1.0, 0.0])


def test_without_the_out_of_fold_rule_the_lucky_blend_is_taken() -> None:
    """The same draws asked by returning users: the rule keeps the lift alone; without it
    (``out_of_fold=False``, the rule before issue 24) the search takes the lucky blend with the
    noise; a grid given to the search is the one it searches."""
    prep = _new_users(better=0.3, worse=0.05, seed=3)
    noise = 0.3 * np.random.default_rng(103).standard_normal(prep.parts[0].shape)
    n = len(prep.n_relevant)
    prep = replace(
        prep,
        parts=(*prep.parts, noise.astype(np.float32)),
        flat=np.zeros(3, dtype=bool),
        silent=np.zeros(3, dtype=bool),
        buckets=np.full(n, 3, dtype=np.int64),
        known=np.ones(n, dtype=np.int64),
    )
    parts = (*PRIOR_PARTS, "noise")
    grid = simplex_grid(3, 0.5)
    lucky = grid[one_standard_error_choice(blend_ndcg(prep, grid), grid)]
    assert lucky[2] > 0

    def chosen(out_of_fold: bool, given: np.ndarray | None = None) -> np.ndarray:
        weights = np.zeros((len(USER_EDGES), 2, len(USER_KINDS), 3), dtype=np.float32)
        search = WeightSearch(parts, weights, 0.5, None, 30, 0, out_of_fold)
        search.fit({1: [prep]}, grid=given)
        return search.weights[3, 1, 1]

    np.testing.assert_array_equal(chosen(True), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(chosen(False), lucky)
    only = np.asarray([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    assert chosen(False, only).tolist() in only.tolist()


def _two_shapes(loss: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid rows: part 0 alone, part 1 alone, half of each. 150 random-shaped queries, where
    the blend trails part 0 by ``loss`` on average, and 150 latest-shaped ones, where it leads
    it by 0.3; part 0 is the best single part on the pool."""
    rng = np.random.default_rng(seed)
    grid = np.asarray([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    n = 150
    base = rng.uniform(0.3, 0.7, 2 * n)
    noise = rng.normal(0.0, 0.05, 2 * n)
    part0 = base
    part1 = np.concatenate([base[:n] - 0.3, base[n:] + 0.1])
    blend = base + noise + np.concatenate([np.full(n, -loss), np.full(n, 0.3)])
    latest = np.arange(2 * n) >= n
    return grid, np.vstack([part0, part1, blend]), latest


def test_a_blend_that_loses_one_shape_beyond_its_error_keeps_the_reference() -> None:
    grid, scores, latest = _two_shapes(loss=0.1)

    def blend(s: np.ndarray) -> int:
        return int(np.argmax(s.mean(axis=1)))

    # it wins the pool out of fold: today's rule takes it
    assert keep_unless_beaten(scores, blend, best_single(grid), 0)[0] == 2
    best, gain, se, shapes = keep_unless_beaten_on_every_shape(
        scores, blend, best_single(grid), 0, latest
    )
    assert gain > se  # the pool alone passes it...
    assert shapes["gain_random"] < -shapes["se_random"]  # ...but it loses the random shape
    assert shapes["gain_random"] == pytest.approx((scores[2] - scores[0])[~latest].mean())
    assert shapes["gain_latest"] > shapes["se_latest"]
    assert best == 0


def test_a_blend_that_wins_or_ties_on_each_shape_is_taken() -> None:
    grid, scores, latest = _two_shapes(loss=0.0)

    def blend(s: np.ndarray) -> int:
        return int(np.argmax(s.mean(axis=1)))

    best, gain, se, shapes = keep_unless_beaten_on_every_shape(
        scores, blend, best_single(grid), 0, latest
    )
    assert best == 2 and gain > se
    assert abs(shapes["gain_random"]) < 3 * shapes["se_random"]
    # a shape with fewer than four queries is not judged
    few = np.arange(scores.shape[1]) < 3
    _, _, _, judged = keep_unless_beaten_on_every_shape(scores, blend, best_single(grid), 0, few)
    assert set(judged) == {"gain_random", "se_random"}


def _split_parts(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Part 0 finds the random-shaped queries' items, part 1 the latest-shaped ones; row 2, a
    blend, finds 95% of what each finds; row 3 is part 0 plus noise."""
    rng = np.random.default_rng(seed)
    latest = np.arange(2 * n) >= n
    base = rng.random(2 * n)
    part0 = np.where(latest, 0.5 * base, base)
    part1 = np.where(latest, base, 0.5 * base)
    blend = 0.95 * base
    grid = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.9, 0.1]])
    return grid, np.vstack([part0, part1, blend, part0 + rng.normal(0, 0.01, 2 * n)]), latest


def test_each_shape_takes_the_row_whose_worse_shape_is_best() -> None:
    grid, scores, latest = _split_parts()
    # pooled, the parts tie and the blend is 0.95 of either: each part alone loses a shape by half
    row, report = each_shape_at_its_best(scores, grid, latest)
    assert row == 2
    assert report["ratio_random"] == pytest.approx(0.95, abs=1e-9)
    assert report["ratio_latest"] == pytest.approx(0.95, abs=1e-9)
    assert report["best_part_random"] == pytest.approx(scores[0, ~latest].mean())
    assert report["best_part_latest"] == pytest.approx(scores[1, latest].mean())


def test_each_shape_prefers_the_simplest_row_tied_with_the_top_on_every_shape() -> None:
    grid, scores, latest = _split_parts()
    # make part 0 the best on both shapes: row 3 (part 0, each query moved up or down by 0.001
    # in turn) ties with it on each shape, and the single part is simpler
    scores[0, latest] = scores[1, latest] + 0.001
    scores[3] = scores[0] + np.where(np.arange(scores.shape[1]) % 2, 0.001, -0.001)
    row, report = each_shape_at_its_best(scores, grid, latest)
    assert row == 0 and report["ratio_random"] == report["ratio_latest"] == 1.0
    # a default tied on every shape is kept; one clearly worse on a shape is not
    assert each_shape_at_its_best(scores, grid, latest, default=3)[0] == 3
    assert each_shape_at_its_best(scores, grid, latest, default=1)[0] == 0
