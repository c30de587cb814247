"""A synthetic two-topic dataset shared by the tests: even users like even items, odd users odd
items, and every item's title names its topic, so content and CF models both have a signal."""

from __future__ import annotations

import numpy as np
import pandas as pd

from coldbrew.data.schema import Dataset, DatasetSpec

TOPICS = ("mountain hiking outdoor", "kitchen cooking recipe")


def two_topics(
    n_users: int = 40,
    n_items: int = 60,
    *,
    per_user: int = 10,
    seed: int = 0,
    random_times: bool = False,
) -> Dataset:
    """``per_user`` positives (rating 5) per user; timestamps in choice order, or random."""
    rng = np.random.default_rng(seed)
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"{TOPICS[j % 2]} thing {j}" for j in range(n_items)],
        }
    )
    rows = []
    for u in range(n_users):
        pool = [j for j in range(n_items) if j % 2 == u % 2]
        for t, j in enumerate(rng.choice(pool, size=per_user, replace=False)):
            when = float(rng.integers(0, 1000)) if random_times else float(t)
            rows.append((f"u{u}", f"i{j}", 5.0, when))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])
    return Dataset(DatasetSpec("two-topics", positive_threshold=4.0), items, inter)
