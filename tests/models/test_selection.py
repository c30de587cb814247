"""Choosing a blend on validation: a mixture that only wins by the luck of the grid stays out."""

from __future__ import annotations

import numpy as np

from coldbrew.models.selection import always, best_single, keep_unless_beaten, out_of_fold_gain
from coldbrew.models.weights import one_standard_error_choice


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
