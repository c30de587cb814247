"""``benchmarks/linear_transitions.py``: each dataset's setting is chosen on the others only, by
the geometric mean of its ratios to the counts, and judged on the held-out one."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from chains import chains
from coldbrew.models.sequence import LinearTransitionRecommender, TransitionRecommender

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "linear_transitions.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("linear_transitions")


def run(counts: float, **settings: float) -> dict:
    rows = {"counts": {"recall10": counts}}
    rows |= {name: {"recall10": value} for name, value in settings.items()}
    return {"settings": rows}


def test_each_dataset_is_judged_by_the_setting_best_on_the_others(script: ModuleType) -> None:
    # a doubles on d1 and loses a little on the others; b gains a little everywhere but on odd
    by_dataset = {
        "d1": run(0.1, a=0.2, b=0.11),
        "d2": run(0.2, a=0.19, b=0.22),
        "d3": run(0.2, a=0.19, b=0.22),
        "odd": run(0.1, a=0.12, b=0.09),
    }
    out = script.leave_one_out(by_dataset, shipped="b")
    assert out["odd"]["chosen_on_others"] == "a"  # its own best is a too, but it is not asked
    assert out["odd"]["held_out_ratio"] == pytest.approx(1.2)
    assert out["odd"]["shipped_held_out_ratio"] == pytest.approx(0.9)
    # without d1, b wins the others' geometric mean and is judged on d1
    assert out["d1"]["chosen_on_others"] == "b"
    assert out["d1"]["held_out_ratio"] == pytest.approx(1.1)
    assert set(out) == set(by_dataset)


def test_a_target_in_the_top_ten_is_a_hit_and_the_history_is_masked(script: ModuleType) -> None:
    data = chains(12, 40, 4, True)
    model = LinearTransitionRecommender(window=2, l2=1.0).fit(data)
    # after i4 then i5 comes i6; i5 itself, liked, is never recommended again
    assert script.recall_at_10(model, [("i4", "i5")], ["i6"]) == [1.0]
    assert script.recall_at_10(model, [("i4", "i5")], ["i5"]) == [0.0]
    counts = TransitionRecommender(window=2).fit(data)
    assert script.recall_at_10(counts, [("i4", "i5")], ["i6"]) == [1.0]
