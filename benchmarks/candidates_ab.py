"""One code tree's candidate path on a kept database and model: run two trees side by side.

Loads the engine over ``WORK/big.sqlite`` and the model versions in ``WORK/models`` (kept by
``candidates.py --keep WORK``), answers 300 recommend-by-user-id requests (k = 20, no
explanations) scoring candidates only, then 100 of them scoring every item (the recall@20 of the
candidates' top 20 against that), then cycles through 50 of them while a real refit runs in its
background process (at most ``SECONDS``). Run it for two trees at the same time, each over its
own copy of WORK, so both see the same load on a shared machine; the ratio of their latencies is
the figure to read when the absolute ones are inflated by other work:

    cp -r WORK /tmp/a && cp -r WORK /tmp/b
    PYTHONPATH=TREE_A/src nice -n 10 python benchmarks/candidates_ab.py /tmp/a 300 &
    PYTHONPATH=TREE_B/src nice -n 10 python benchmarks/candidates_ab.py /tmp/b 300 &
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from coldbrew.bench.provenance import stamped
from coldbrew.live.answers import Query
from coldbrew.live.engine import Engine, Serving
from coldbrew.models.query import UserQuery
from coldbrew.store import Store
from coldbrew.text.factory import make_encoder


def percentiles(ms: np.ndarray) -> list[float]:
    return [round(float(np.percentile(ms, p)), 1) for p in (50, 99)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="a copy of candidates.py --keep WORK")
    parser.add_argument("seconds", type=float, help="at most this long beside the refit")
    args = parser.parse_args()
    work, seconds = args.work, args.seconds
    store = Store(str(work / "big.sqlite"))
    serving = Serving(
        models_dir=str(work / "models"), refit_every=0, refit_minutes=0, score_all_below=0
    )
    encoder = make_encoder("hashing:384")
    engine = Engine(store, encoder, serving=serving, graph_path=str(work / "graph.faiss")).load()
    users = np.random.default_rng(2).choice(3000, 300, replace=False)
    queries = [Query(UserQuery(user_id=f"u{u}"), k=20, explain=False) for u in users]

    def timed(qs: list[Query]) -> tuple[list[list[str]], np.ndarray]:
        found, ms = [], []
        for q in qs:
            start = time.perf_counter()
            answer = engine.recommend(q)
            ms.append((time.perf_counter() - start) * 1e3)
            found.append([r.item.item_id for r in answer])
        return found, np.asarray(ms)

    timed(queries[:20])
    out: dict[str, object] = {"code": os.environ.get("PYTHONPATH"), "load_start": os.getloadavg()}
    cand, ms = timed(queries)
    out["quiet_ms"] = percentiles(ms)
    engine.serving = dataclasses.replace(serving, score_all_below=10**9)
    full, ms = timed(queries[:100])
    out["full_ms"] = percentiles(ms)
    pairs = zip(full, cand[:100])
    out["recall_at_20"] = round(float(np.mean([len(set(a) & set(b)) / 20 for a, b in pairs])), 4)
    sizes = [len(engine.candidates(engine.model, *engine.user_query(q.user))) for q in queries[:50]]
    out["sizes"] = int(np.mean(sizes))
    engine.serving = dataclasses.replace(serving, score_all_below=0)
    if seconds > 0 and engine.refit() == "started" and engine.refitter is not None:
        during: list[float] = []
        stop = time.perf_counter() + seconds
        while engine.refitter.running and time.perf_counter() < stop:
            during.extend(timed(queries[:50])[1])
        out["during_refit_ms"] = percentiles(np.asarray(during))
        out["during_refit_n"] = len(during)
        engine.refitter.stop()
    out["load_end"] = os.getloadavg()
    print(json.dumps(stamped(out)), flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
