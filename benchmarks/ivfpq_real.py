"""IVF-PQ over real MiniLM item vectors: recall@10 against an exact float32 scan.

Reads the item vectors an embedding cache holds (``--cache``: an ``EmbeddingCache`` file of
all-MiniLM-L6-v2 passages, e.g. the benchmark datasets' item texts), builds the service's
:class:`~coldbrew.index.ivfpq.IVFPQIndex` over all of them (searched through IVF-PQ at any size),
and compares its top 10 with an exact scan for 200 short wishes encoded by MiniLM (``load.py``'s
text queries) and for 200 of the items themselves.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/ivfpq_real.py \\
        --cache /work/cache/st_all-MiniLM-L6-v2.passage.npz
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from load import text_queries

from coldbrew.bench.provenance import stamped
from coldbrew.index.exact import ExactIndex
from coldbrew.index.ivfpq import IVFPQIndex
from coldbrew.text.factory import make_encoder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[32, 64])
    args = parser.parse_args()
    with np.load(args.cache, allow_pickle=False) as data:
        vectors = data["vectors"].astype(np.float32)
    ids = [f"i{j}" for j in range(len(vectors))]
    queries = {
        "text": make_encoder("default").encode(text_queries(200, seed=1), kind="query"),
        "item": vectors[np.random.default_rng(0).choice(len(vectors), 200, replace=False)],
    }
    exact = ExactIndex(vectors.shape[1])
    exact.add(ids, vectors)
    out: dict[str, object] = {"items": len(vectors)}
    for nprobe in args.nprobe:
        index = IVFPQIndex(vectors.shape[1], exact_below=0, nprobe=nprobe)
        start = time.perf_counter()
        index.add_all(ids, vectors, None)
        out[f"nprobe{nprobe}_build_s"] = round(time.perf_counter() - start, 1)
        for name, batch in queries.items():
            got, want = index.search(batch, 10)[0], exact.search(batch, 10)[0]
            hits = [len(set(a) & set(b)) / 10 for a, b in zip(got, want)]
            out[f"nprobe{nprobe}_{name}_recall_at_10"] = round(float(np.mean(hits)), 3)
    print(json.dumps(stamped(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
