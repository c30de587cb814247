"""Users who like runs along one chain of items, in order: what a sequential model must learn."""

from __future__ import annotations

import numpy as np
import pandas as pd

from coldbrew.data.schema import Dataset, DatasetSpec


def chains(n_items: int, users: int, run: int, with_time: bool = True) -> Dataset:
    """``users`` users who each like ``run`` consecutive items of the chain i0 → i1 → …, from
    every start in turn; later steps come first in the file, so only the timestamps give the
    order (``with_time=False``: none)."""
    rows = []
    for u in range(users):
        start = u % (n_items - run)
        for step in range(run):
            rows.append((f"u{u}", f"i{start + step}", 5.0, 1000.0 * u + step))
    rows.reverse()
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])
    if not with_time:
        frame["timestamp"] = np.nan
    items = pd.DataFrame({"item_id": [f"i{n}" for n in range(n_items)], "title": "x"})
    spec = DatasetSpec(name="chains", item_text=("title",), positive_threshold=4.0)
    return Dataset(spec, items, frame, pd.DataFrame({"user_id": []}))
