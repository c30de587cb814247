"""Resident memory after each start-up step of the engine over a ``million.py`` database.

In-process, with the service's encoder (MiniLM through onnxruntime, as ``coldbrew serve`` runs
it) and the zero-shot model: RSS after the imports, the encoder and ``Engine.load()`` (index,
items, users, model), then the index's own bytes, whether the model shares the index's rows and
whether PyTorch or sentence-transformers were imported (they should not be).

    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/million_memory.py \\
        /tmp/mil/m1/million-1000000-1.0-float16.sqlite [int8]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time

import numpy as np
import psutil

from coldbrew.bench.provenance import stamped
from coldbrew.live.engine import Engine, Serving
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.store import Store
from coldbrew.text.factory import make_encoder
from coldbrew.text.runtime import onnx_or_torch


def _raw(rows: object) -> np.ndarray:
    """The array holding a matrix's values (int8 rows: their codes)."""
    return np.asarray(getattr(rows, "codes", rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", help="a million.py database (SQLite file)")
    parser.add_argument(
        "rows", nargs="?", default="float16", choices=["float16", "int8"], help="the index's rows"
    )
    args = parser.parse_args()
    db, rows = args.db, args.rows
    process, start = psutil.Process(), time.perf_counter()
    steps: list[tuple[str, int, float]] = []

    def mark(name: str) -> None:
        gc.collect()
        rss = round(process.memory_info().rss / 2**20)
        steps.append((name, rss, round(time.perf_counter() - start, 1)))
        print(steps[-1], flush=True)

    mark("python + coldbrew imports")
    encoder = onnx_or_torch(make_encoder("default"), "auto")
    mark("encoder (MiniLM, onnxruntime)")
    store = Store(db, vector_dtype=rows)
    with tempfile.TemporaryDirectory() as models:
        serving = Serving(model="zeroshot", models_dir=models)
        engine = Engine(store, encoder, serving=serving, graph_path=db + ".hnsw").load()
        mark("Engine.load() (index, items, users, zero-shot model)")
        model = engine.model
        shared = isinstance(model, ZeroShotRecommender) and bool(
            np.shares_memory(_raw(model.item_vectors), _raw(engine.index.vectors))
        )
        index_mb = round(getattr(engine.index, "memory_bytes", 0) / 2**20)
        items = len(engine.items)
    heavy = [m for m in ("torch", "sentence_transformers") if m in sys.modules]
    report = {"items": items, "rows": rows, "index_mb": index_mb, "model_shares_index_rows": shared}
    print(json.dumps(stamped({**report, "imported": heavy, "steps": steps})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
