"""``data.schema.history_by_user`` groups each user's items in NumPy (issue 29): the same
histories, in the same order of users, as one pandas group per user."""

from __future__ import annotations

import numpy as np
import pandas as pd

from coldbrew.data.schema import ITEM_ID, TIMESTAMP, USER_ID, history_by_user


def _grouped(frame: pd.DataFrame) -> dict[str, list[object]]:
    """Each user's items oldest first (ties in row order), a pandas group at a time."""
    frame = frame.assign(_order=np.arange(len(frame)))
    ts = frame[TIMESTAMP].fillna(-np.inf) if TIMESTAMP in frame else 0
    frame = frame.assign(_ts=ts).sort_values(["_ts", "_order"], kind="stable")
    return {str(u): list(g[ITEM_ID]) for u, g in frame.groupby(USER_ID, sort=False)}


def _frame(rng: np.random.Generator, count: int, dtype: str | None) -> pd.DataFrame:
    users = rng.choice(["u10", "u9", "ü2", "U1", "10"], count)
    items = rng.choice(["i1", "i2", "i10", "ï3"], count)
    stamps = rng.integers(0, 6, count).astype(float)  # ties: their rows' order decides
    stamps[rng.random(count) < 0.2] = np.nan  # no time: first
    return pd.DataFrame(
        {
            USER_ID: pd.Series(users, dtype=dtype),
            ITEM_ID: pd.Series(items, dtype=dtype),
            TIMESTAMP: stamps,
        }
    )


def test_the_same_histories_as_pandas_groups() -> None:
    rng = np.random.default_rng(5)
    for dtype in ("str", object):
        frame = _frame(rng, 300, dtype)
        found = history_by_user(frame)
        assert found == _grouped(frame)
        assert list(found) == list(_grouped(frame))  # users in the order they first appear
        assert all(type(i) is str for items in found.values() for i in items)


def test_without_timestamps_rows_keep_their_order() -> None:
    frame = _frame(np.random.default_rng(6), 50, "str").drop(columns=[TIMESTAMP])
    assert history_by_user(frame) == _grouped(frame)


def test_events_without_a_user_are_left_out_and_values_kept() -> None:
    frame = pd.DataFrame(
        {
            USER_ID: ["a", None, "b", np.nan, "a"],
            ITEM_ID: [{"x": 1}, {"y": 2}, None, 3, 7],  # contexts read through it too
            TIMESTAMP: [3.0, 1.0, 2.0, 0.0, 1.0],
        }
    )
    assert history_by_user(frame) == _grouped(frame) == {"a": [7, {"x": 1}], "b": [None]}
    assert history_by_user(frame.iloc[:0]) == {}
