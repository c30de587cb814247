"""``benchmarks/blend_bound.py``: the best weighting on a query set is found, and is an upper
bound for any other weighting on the same queries."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from coldbrew.models.hybrid import _ndcg20, simplex_grid

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "blend_bound.py"


@pytest.fixture(scope="module")
def bound() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("blend_bound")


def prepared(rng: np.random.Generator, queries: int = 40, width: int = 30) -> dict[str, Any]:
    """Three parts over ``width`` candidates: one knows the relevant items, one half-knows
    them, one is noise."""
    relevant = rng.random((queries, width)) < 0.1
    relevant[:, 0] = True
    truth = relevant.astype(np.float32)
    return {
        "parts": [
            truth + 0.1 * rng.standard_normal((queries, width)).astype(np.float32),
            0.5 * truth + rng.standard_normal((queries, width)).astype(np.float32),
            rng.standard_normal((queries, width)).astype(np.float32),
        ],
        "ties": np.zeros((queries, width), dtype=np.float32),
        "pad": np.zeros((queries, width), dtype=bool),
        "relevant": relevant,
        "n_relevant": relevant.sum(axis=1),
        "flat": np.zeros(3, dtype=bool),
        "silent": np.zeros(3, dtype=bool),
    }


def test_the_bound_is_the_best_grid_point(bound: ModuleType) -> None:
    rng = np.random.default_rng(0)
    prep = prepared(rng)
    rows = np.ones(40, dtype=bool)
    sub = bound.query_rows(prep, rows, [0, 1, 2])
    grid = simplex_grid(3, 0.25)
    values, best = bound.best_on(sub, grid)
    means = []
    for w in grid:
        blend = sum(float(w[j]) * p for j, p in enumerate(prep["parts"]))
        means.append(_ndcg20(blend, prep["relevant"], prep["n_relevant"]).mean())
    assert values.mean() == pytest.approx(max(means))
    assert means[best] == pytest.approx(max(means))
    # the part that knows the answers carries the best weighting, the noise none of it
    assert grid[best][0] >= 0.5
    assert grid[best][2] <= 0.25


def test_query_rows_cuts_queries_and_parts(bound: ModuleType) -> None:
    prep = prepared(np.random.default_rng(1))
    rows = np.arange(40) < 10
    sub = bound.query_rows(prep, rows, [2])
    assert len(sub["parts"]) == 1
    assert np.array_equal(sub["parts"][0], prep["parts"][2][:10])
    assert sub["relevant"].shape == (10, 30)
    assert "flat" not in sub and "silent" not in sub
