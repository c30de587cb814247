"""``benchmarks/new_user_answers.py``: each new user is scored once, at their first positive,
with the counts of the positives before it."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "new_user_answers.py"


@pytest.fixture(scope="module")
def answers() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("new_user_answers")


def stream() -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """Men like ``a`` (the most popular item overall), women like ``b``; then a new woman
    arrives and likes ``a``, and a new man arrives and likes ``b``."""
    rows = [
        ("m1", "a"),
        ("m2", "a"),
        ("m3", "a"),
        ("w1", "b"),
        ("w2", "b"),
        ("w3", "a"),  # new woman, first like: a (plain popularity's first item)
        ("m4", "b"),  # new man, first like: b
        ("w3", "c"),  # a later like of w3
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    people = {u: {"gender": "F" if u.startswith("w") else "M"} for u in frame["user_id"]}
    return frame, people


def test_each_new_user_is_scored_once_with_the_counts_before_their_first_like(
    answers: ModuleType,
) -> None:
    frame, people = stream()
    scored = answers.score_new_users(frame, people, ["a", "b", "c"], smoothing=(0.1, 1e6))
    # the very first positive has no counts to rank by; every other user once, in stream order
    assert scored["user"].tolist() == ["m2", "m3", "w1", "w2", "w3", "m4"]
    w3 = scored.set_index("user").loc["w3"]
    # before w3: a has 3 likes (all men), b has 2 (all women)
    assert w3["popularity|rank"] == 1
    assert w3["attribute s=0.1|rank"] == 2  # among women, b leads
    assert w3["attribute s=1e+06|rank"] == 1  # smoothed all the way to plain popularity
    # "later" judges all of w3's likes in the stream (a and c), not only the first
    ideal = 1.0 + 1.0 / np.log2(3)
    assert w3["popularity|later"] == pytest.approx(1.5 / ideal)  # a 1st, c 3rd (after b)
    assert w3["attribute s=0.1|later"] == pytest.approx((1.0 / np.log2(3) + 0.5) / ideal)
    m4 = scored.set_index("user").loc["m4"]
    assert m4["popularity|rank"] == 2  # a (4 likes) ahead of b (2)
    assert m4["attribute s=0.1|rank"] == 2  # men liked a too


def test_the_summary_pairs_each_answer_with_popularity_on_the_same_users(
    answers: ModuleType,
) -> None:
    frame, people = stream()
    scored = answers.score_new_users(frame, people, ["a", "b", "c"], smoothing=(0.1,))
    where = answers.part_of(scored["position"].to_numpy(), n_warm=5, n_eval=1)
    assert where.tolist() == ["history half"] * 4 + ["evaluation window", "rest"]
    summary = answers.summarise(scored, resamples=50)
    assert summary["users"] == 6
    assert summary["popularity"]["first_hits"] == 6  # three items: every like is in a top 20
    assert summary["popularity"]["first_hits_minus_popularity"] == (0.0, 0.0)
    # first likes at rank 1, 1, 2, 2, 1, 2 under popularity; attributes swap w2's and w3's
    three_and_three = round((3 + 3 / np.log2(3)) / 6, 4)
    assert summary["popularity"]["first_ndcg"] == three_and_three
    assert summary["attribute s=0.1"]["first_hits"] == 6
    assert summary["attribute s=0.1"]["first_ndcg"] == three_and_three
    assert scored.set_index("user").loc["w2", "attribute s=0.1|rank"] == 1
    text = answers.markdown(
        {
            "dataset": "toy",
            "events": len(frame),
            "n_warm": 5,
            "parts": {"history half": summary},
        }
    )
    assert "| history half | 6 | attribute s=0.1 | 6 (1.000) |" in text


def test_it_splits_the_stream_as_the_replay_does(answers: ModuleType) -> None:
    frame, people = stream()
    args = argparse.Namespace(warmup=0.5, eval_events=2, resamples=20)
    report = answers.run_on(frame, people, ["a", "b", "c"], "toy", args)
    assert (report["n_warm"], report["n_eval"]) == (4, 2)
    assert list(report["parts"]) == ["history half", "evaluation window", "rest"]
    assert [p["users"] for p in report["parts"].values()] == [3, 2, 1]
