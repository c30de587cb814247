"""Probe: the text -> ALS map (`cf_map`) reading whitened MiniLM vectors instead of raw ones.

Both maps as the default recipe builds them (ALS 64 factors, ridge penalty chosen among 3/10/30 on
held-out warm items, 128 TF-IDF SVD dimensions beside the text), one over
:class:`~coldbrew.models.adapted.AdaptedZeroShotRecommender` with ``choices=("whitened",)``.
Scored on the bench's seed-42 cold-item split (NDCG@20, 95% bootstrap interval). Test figures:
evidence for a follow-up, not a selection.

    PYTHONPATH=src python benchmarks/whitened_cf_map.py ml-100k online-retail --cache-root /tmp/ad
"""

from __future__ import annotations

import argparse
import json
import time

from transfer import scored

from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import BenchConfig, load_or_make_split
from coldbrew.data import load_dataset
from coldbrew.models.adapted import AdaptedZeroShotRecommender
from coldbrew.models.base import Recommender
from coldbrew.models.recipes import ModelContext, make_model
from coldbrew.text.factory import make_encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+")
    ap.add_argument("--cache-root", required=True, help="holds cache-<dataset> embedding caches")
    args = ap.parse_args()
    encoder = make_encoder("default")
    for name in args.datasets:
        dataset = load_dataset(name)
        split = load_or_make_split(dataset, "cold-item", BenchConfig(), None)
        ctx = ModelContext(lambda: encoder, f"{args.cache_root}/cache-{name}", 42)
        whitened = make_model("cf_map", ctx)
        whitened.text_model = AdaptedZeroShotRecommender(  # type: ignore[attr-defined]
            encoder, choices=("whitened",), cache_dir=ctx.cache_dir
        )
        models: dict[str, Recommender] = {"cf_map": make_model("cf_map", ctx)}
        models["cf_map over whitened"] = whitened
        for label, model in models.items():
            start = time.time()
            row = {"dataset": name, "model": label}
            row.update(scored(model.fit(split.train_dataset(dataset)), split))
            print(json.dumps(stamped({**row, "seconds": round(time.time() - start)})), flush=True)


if __name__ == "__main__":
    main()
