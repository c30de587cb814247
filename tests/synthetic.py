"""A tiny synthetic dataset folder on disk: two topics, users who like their topic's items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TOPICS = ["mountain hiking outdoor trail", "kitchen cooking recipe pan"]


HOBBIES = ["climber", "chef"]


def write_synthetic(folder: Path, n_users: int = 50, n_items: int = 80, seed: int = 0) -> Path:
    """Two topics; users like items of their topic; their hobby attribute names the topic."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"{TOPICS[j % 2]} thing {j}" for j in range(n_items)],
        }
    )
    users = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(n_users)],
            "hobby": [HOBBIES[u % 2] for u in range(n_users)],
        }
    )
    rows = []
    for u in range(n_users):
        pool = [j for j in range(n_items) if j % 2 == u % 2]
        for t, j in enumerate(rng.choice(pool, size=int(rng.integers(6, 16)), replace=False)):
            rows.append((f"u{u}", f"i{j}", float(rng.integers(3, 6)), float(1000 + t)))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items.to_csv(folder / "items.csv", index=False)
    users.to_csv(folder / "users.csv", index=False)
    inter.to_csv(folder / "interactions.csv", index=False)
    (folder / "dataset.toml").write_text(
        'name = "synthetic"\n\n[items]\nfile = "items.csv"\nid = "item_id"\ntext = ["title"]\n\n'
        '[users]\nfile = "users.csv"\nid = "user_id"\nattributes = ["hobby"]\n\n'
        '[interactions]\nfile = "interactions.csv"\nuser = "user_id"\nitem = "item_id"\n'
        'value = "rating"\ntimestamp = "timestamp"\npositive_threshold = 4\n'
    )
    return folder
