"""The weight grid (:func:`coldbrew.models.weights.simplex_grid`): every weighting in steps,
summing to one, as the brute-force filter of all share tuples finds them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from coldbrew.models.weights import simplex_grid


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
