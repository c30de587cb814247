"""``benchmarks/blend_bound.py``: the best weighting on a query set is found, and is an upper
bound for any other weighting on the same queries."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from coldbrew.eval.metrics import ndcg_at_k_scores, top_hits
from coldbrew.models.blend import Prepared
from coldbrew.models.weights import simplex_grid

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "blend_bound.py"


@pytest.fixture(scope="module")
def bound() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("blend_bound")


def prepared(rng: np.random.Generator, queries: int = 40, width: int = 30) -> Prepared:
    """Three parts over ``width`` candidates: one knows the relevant items, one half-knows
    them, one is noise."""
    relevant = rng.random((queries, width)) < 0.1
    relevant[:, 0] = True
    truth = relevant.astype(np.float32)
    return Prepared(
        parts=(
            truth + 0.1 * rng.standard_normal((queries, width)).astype(np.float32),
            0.5 * truth + rng.standard_normal((queries, width)).astype(np.float32),
            rng.standard_normal((queries, width)).astype(np.float32),
        ),
        ties=np.zeros((queries, width), dtype=np.float32),
        cells=np.ones((queries, width), dtype=np.int64),
        relevant=relevant,
        n_relevant=relevant.sum(axis=1),
        pad=np.zeros((queries, width), dtype=bool),
        buckets=np.zeros(queries, dtype=np.int64),
        known=np.ones(queries, dtype=np.int64),
        flat=np.zeros(3, dtype=bool),
        silent=np.zeros(3, dtype=bool),
    )


def test_the_bound_is_the_best_grid_point(bound: ModuleType) -> None:
    rng = np.random.default_rng(0)
    prep = prepared(rng)
    grid = simplex_grid(3, 0.25)
    values, best = bound.best_on(prep, grid)
    means = []
    for w in grid:
        blend = sum(float(w[j]) * p for j, p in enumerate(prep.parts))
        means.append(ndcg_at_k_scores(blend, prep.relevant, prep.n_relevant, 20).mean())
    assert values.mean() == pytest.approx(max(means))
    assert means[best] == pytest.approx(max(means))
    # the part that knows the answers carries the best weighting, the noise none of it
    assert grid[best][0] >= 0.5
    assert grid[best][2] <= 0.25


def test_the_bound_over_a_part_subset_searches_only_those_parts(bound: ModuleType) -> None:
    prep = prepared(np.random.default_rng(1))
    sub = prep.take_parts([1, 2]).take_queries(np.arange(40) < 10)
    values, best = bound.best_on(sub, simplex_grid(2, 0.5))
    assert values.shape == (10,)
    # the half-knowing part beats noise: the best point gives it at least half the weight
    assert simplex_grid(2, 0.5)[best][0] >= 0.5


def test_the_next_item_bound_searches_recall_at_ten(bound: ModuleType) -> None:
    prep = prepared(np.random.default_rng(2))
    grid = simplex_grid(3, 0.25)
    values, best = bound.best_on(prep, grid, "recall@10")
    means = []
    for w in grid:
        blend = sum(float(w[j]) * p for j, p in enumerate(prep.parts))
        top = top_hits(blend, prep.relevant, 10)
        means.append((top.sum(axis=1) / prep.n_relevant).mean())
    assert values.mean() == pytest.approx(max(means))
    assert means[best] == pytest.approx(max(means))
    assert bound.HEADLINE["next-item"] == "recall@10"
    assert set(bound.figure(values, "recall@10")) == {"recall10", "ci"}
