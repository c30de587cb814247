"""Single-query latency of the default hybrid for attribute-only (k = 0) users, twice over the
same 100 users of ml-100k's cold-user split: the first pass encodes each new attribute sentence,
the second finds it remembered.

    PYTHONPATH=src python benchmarks/attribute_latency.py SPLITS_DIR CACHE_DIR

``SPLITS_DIR`` holds (or receives) the seed-42 cold-user split; ``CACHE_DIR`` the text vectors.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from coldbrew.bench.evaluate import build_queries
from coldbrew.bench.runner import BenchConfig, load_or_make_split
from coldbrew.data import load_dataset
from coldbrew.models.recipes import ModelContext, make_model
from coldbrew.text.factory import make_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("splits_dir", type=Path, help="where the cold-user split is kept")
    parser.add_argument("cache_dir", help="where text vectors are cached")
    args = parser.parse_args()
    dataset = load_dataset("ml-100k")
    config = BenchConfig(protocols=("cold-user",))
    split = load_or_make_split(dataset, "cold-user", config, args.splits_dir / "cold-user-seed42")
    encoder = make_encoder("default")
    context = ModelContext(lambda: encoder, args.cache_dir, 42)
    hybrid = make_model("hybrid", context).fit(split.train_dataset(dataset))
    queries = build_queries(split, k=0).queries[:100]
    combos = {tuple(sorted(hybrid.resolve(q).attributes.items())) for q in queries}
    for label in ("first pass", "second pass"):
        ms = []
        for query in queries:
            start = time.perf_counter()
            hybrid.recommend(query, k=20)
            ms.append(1000 * (time.perf_counter() - start))
        print(
            f"{label}: p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms "
            f"over {len(ms)} users with {len(combos)} distinct attribute combinations",
            flush=True,
        )


if __name__ == "__main__":
    main()
