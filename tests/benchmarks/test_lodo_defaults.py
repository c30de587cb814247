"""``benchmarks/lodo_defaults.py``: a default is chosen on the other datasets only, confirmed on
the held-out one, and each candidate is scored on queries its search did not see."""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from coldbrew.models.blend import Prepared, blend_ndcg
from coldbrew.models.hybrid import HybridRecommender

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "lodo_defaults.py"


@pytest.fixture(scope="module")
def lodo() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("lodo_defaults")


def test_each_dataset_is_judged_by_a_choice_made_on_the_others(lodo: ModuleType) -> None:
    # "odd" prefers candidate b; the four others prefer a, one of them (d1) by far
    ratios = {
        "d1": {"a": 1.30, "b": 1.00, "c": 1.00},
        "d2": {"a": 1.02, "b": 1.00, "c": 1.01},
        "d3": {"a": 1.02, "b": 1.00, "c": 1.01},
        "d4": {"a": 1.02, "b": 1.00, "c": 1.01},
        "odd": {"a": 0.80, "b": 1.05, "c": 1.00},
    }
    rows = lodo.rotate(ratios, ["a", "b", "c"], shipped="c")
    # held out, "odd" cannot vote for b: a wins on the other four and is judged on "odd"
    assert rows["odd"]["chosen"] == "a"
    assert rows["odd"]["held_out_ratio_chosen"] == 0.80
    assert rows["odd"]["held_out_ratio_shipped"] == 1.00
    assert not rows["odd"]["is_shipped"]
    # held out, d1 leaves "odd" to outvote the rest: b's geometric mean 1.05^(1/4) beats
    # a's (0.8 x 1.02^3)^(1/4) and c's 1.01^(3/4)
    assert rows["d1"]["chosen"] == "b"
    assert rows["d1"]["held_out_ratio_chosen"] == 1.00
    assert rows["d1"]["chosen_on_the_others"] == pytest.approx(1.05**0.25)
    # held out, d2 leaves d1's 1.3 to outweigh "odd": a again
    assert rows["d2"]["chosen"] == "a"


def test_a_tie_on_the_others_keeps_the_shipped_default(lodo: ModuleType) -> None:
    ratios = {d: {"a": 1.0, "b": 1.0, "c": 0.9} for d in ("x", "y", "z")}
    rows = lodo.rotate(ratios, ["a", "b", "c"], shipped="b")
    assert all(r["chosen"] == "b" and r["is_shipped"] for r in rows.values())
    assert rows["x"]["tied_on_the_others"] == ["a", "b"]
    # without the shipped default among the tied, the first in the given order
    rows = lodo.rotate(ratios, ["a", "b", "c"], shipped="c")
    assert rows["x"]["chosen"] == "a"


def prepared(seed: int, queries: int = 120, width: int = 30) -> Prepared:
    """Cold items (cell 0) scored by three parts: one knows what is relevant, one half-knows
    it, one is noise."""
    rng = np.random.default_rng(seed)
    relevant = rng.random((queries, width)) < 0.1
    relevant[:, 0] = True
    truth = relevant.astype(np.float32)
    noise = [rng.standard_normal((queries, width)).astype(np.float32) for _ in range(3)]
    return Prepared(
        parts=(truth + 0.8 * noise[0], 0.5 * truth + noise[1], noise[2]),
        ties=np.zeros((queries, width), dtype=np.float32),
        cells=np.zeros((queries, width), dtype=np.int64),
        relevant=relevant,
        n_relevant=relevant.sum(axis=1),
        pad=np.zeros((queries, width), dtype=bool),
        buckets=np.full(queries, 3, dtype=np.int64),
        known=np.ones(queries, dtype=np.int64),
        flat=np.zeros(3, dtype=bool),
        silent=np.zeros(3, dtype=bool),
    )


def test_the_best_single_part_candidate_scores_that_part_out_of_fold(lodo: ModuleType) -> None:
    prep = prepared(0)
    parts = ["knows", "half", "noise"]
    name, base = lodo.best_part(prep, parts)
    assert name == "knows"
    single = lodo.Candidate(0.2, 1, True)
    values = lodo.cross_fitted(single, prep, [prep], parts, cell=0, repeats=2)
    # both halves pick the part that knows: each query gets exactly that part's NDCG@20
    assert values == pytest.approx(blend_ndcg(prep, np.array([1.0, 0.0, 0.0], np.float32)))
    assert values.mean() == pytest.approx(base)


def test_a_blend_is_scored_on_queries_its_search_did_not_see(lodo: ModuleType) -> None:
    prep = prepared(1)
    parts = ["knows", "half", "noise"]
    _, base = lodo.best_part(prep, parts)
    blends = lodo.Candidate(0.1, 3, False)
    values = lodo.cross_fitted(blends, prep, [prep], parts, cell=0, repeats=3)
    assert values.shape == (len(prep.n_relevant),)
    # the best blend on all the queries is an upper bound no out-of-fold choice can pass
    grid = lodo.search_for(blends, parts, 0).grid([prep])
    assert values.mean() <= blend_ndcg(prep, grid).mean(axis=1).max() + 1e-9
    # and nothing here is worth much more than the part that knows (no test data: a sanity
    # check that the blend did not collapse onto the noise)
    assert values.mean() > 0.8 * base


def test_the_candidates_hold_the_shipped_default_once(lodo: ModuleType) -> None:
    names = [c.name for c in lodo.candidates()]
    assert names[0] == lodo.SHIPPED.name
    assert len(names) == len(set(names))
    # ... and it is the hybrid's own default
    params = inspect.signature(HybridRecommender).parameters
    assert lodo.SHIPPED.grid_step == params["grid_step"].default
    assert lodo.SHIPPED.max_parts == params["max_parts"].default
    assert lodo.SHIPPED.out_of_fold


@pytest.mark.parametrize("cand", [(0.2, 3, True), (0.25, 2, False), (0.1, 3, True)])
def test_remembered_scores_are_the_searches_own(
    lodo: ModuleType, cand: tuple[float, int, bool]
) -> None:
    """Each query's NDCG looked up, not recomputed, changes no choice: the same per-query
    figures as the hybrid's search measuring every grid point itself, users in two buckets."""
    prep = prepared(2)
    n = len(prep.n_relevant)
    prep = replace(prep, buckets=np.where(np.arange(n) < n // 3, 2, 4))
    parts = ["knows", "half", "noise"]
    c = lodo.Candidate(*cand)
    plain = lodo.cross_fitted(c, prep, [prep], parts, cell=0, repeats=2)
    memo = lodo.Remembered(prep, 0)
    remembered = lodo.cross_fitted(c, prep, [prep], parts, cell=0, repeats=2, ndcg=memo)
    np.testing.assert_array_equal(plain, remembered)
    assert memo.points  # it was asked, and remembered
