"""Two markets by place and hour: context that predicts what sells."""

from __future__ import annotations

import numpy as np
import pandas as pd

from coldbrew.data.schema import CONTEXT, Dataset, DatasetSpec

MORNING, EVENING = "2011-06-04T09:30:00", "2011-06-04T20:00:00"  # a Saturday


def market(n_users: int) -> Dataset:
    """Half the users shop in France in the morning and buy French goods, half in the UK in the
    evening and buy British ones; ten of each, bought at random within a user's side."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        side, ctx = ("fr", {"time": MORNING, "location": "France"}) if u % 2 else ("uk", {
            "time": EVENING, "location": "UK"})  # fmt: skip
        for e in range(4):
            rows.append((f"u{u}", f"{side}{rng.integers(10)}", float(10 * u + e), ctx))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", CONTEXT])
    ids = [f"{side}{n}" for side in ("fr", "uk") for n in range(10)]
    items = pd.DataFrame({"item_id": ids, "title": [f"thing {n}" for n in range(20)]})
    return Dataset(DatasetSpec("market"), items, inter.assign(value=np.nan))
