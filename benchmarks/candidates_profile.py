"""Where one by-id candidate request's time goes, on a kept database and model.

Loads the engine over ``WORK`` (kept by ``candidates.py --keep WORK``; the same load as
``candidates_ab.py``), answers ``--requests`` recommend-by-user-id requests (k = 20, no
explanations) scoring candidates only, and reports each request's wall and CPU time
(``process_time``: on a loaded machine the CPU a request takes is the honest figure, its wall
time measures the scheduler too), the mean CPU time per request spent in each part's proposals
and scoring and in the item index's search, then a cProfile (in CPU seconds) of the same
requests. ``--out FILE`` writes the figures as stamped JSON. ``--answers FILE`` writes the 300
users' top 20 (ids and scores) as JSON under ``answers``, with the run's provenance beside it,
to check that two code trees give the same answers (compare their ``answers``):

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=TREE/src python benchmarks/candidates_profile.py WORK \\
        --requests 60 --answers answers.json --out profile.json
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.bench.provenance import stamped
from coldbrew.live.answers import Query
from coldbrew.live.engine import Engine, Serving
from coldbrew.models.query import UserQuery
from coldbrew.store import Store
from coldbrew.text.factory import make_encoder


def timed_calls(obj: Any, method: str, label: str, spent: dict[str, float]) -> None:
    """Add the CPU seconds each call of ``obj.method`` takes to ``spent[label]``."""
    inner: Callable[..., Any] = getattr(obj, method)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - start

    setattr(obj, method, wrapper)


def summary(ms: list[float]) -> dict[str, float]:
    """Mean, p50 and p99 of per-request milliseconds, rounded to 0.01 ms."""
    found = {"mean": np.mean(ms), "p50": np.percentile(ms, 50), "p99": np.percentile(ms, 99)}
    return {k: round(float(v), 2) for k, v in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="a copy of candidates.py --keep WORK")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--answers", type=Path, default=None, help="write the top 20s here")
    parser.add_argument("--out", type=Path, default=None, help="write the figures here (JSON)")
    args = parser.parse_args()
    store = Store(str(args.work / "big.sqlite"))
    serving = Serving(
        models_dir=str(args.work / "models"), refit_every=0, refit_minutes=0, score_all_below=0
    )
    graph = str(args.work / "graph.faiss")
    engine = Engine(store, make_encoder("hashing:384"), serving=serving, graph_path=graph).load()
    users = np.random.default_rng(2).choice(3000, 300, replace=False)
    queries = [Query(UserQuery(user_id=f"u{u}"), k=20, explain=False) for u in users]
    asked = queries[: args.requests]
    for query in queries[:20]:
        engine.recommend(query)
    spent: dict[str, float] = defaultdict(float)
    for name, part in engine.model.named_parts().items() if engine.model else ():
        scoring = "score_with_reference" if hasattr(part, "score_with_reference") else "score_rows"
        timed_calls(part, scoring, f"score_rows {name}", spent)  # the former before 928fe77
        timed_calls(part, "propose", f"propose {name}", spent)
    timed_calls(engine.index, "search", "index search", spent)
    ms, cpu = [], []
    for query in asked:
        start, start_cpu = time.perf_counter(), time.process_time()
        engine.recommend(query)
        cpu.append((time.process_time() - start_cpu) * 1e3)
        ms.append((time.perf_counter() - start) * 1e3)
    figures = {"requests": len(asked), "wall_ms": summary(ms), "cpu_ms": summary(cpu)}
    figures["parts_cpu_ms"] = {k: round(v / len(asked) * 1e3, 3) for k, v in spent.items()}
    print(f"{len(asked)} requests, wall ms {figures['wall_ms']}, CPU ms {figures['cpu_ms']}")
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {label:28s} {seconds / len(asked) * 1e3:8.3f} CPU ms a request")
    if args.out:
        args.out.write_text(json.dumps(stamped({"figures": figures}), indent=2))
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for query in asked:
        engine.recommend(query)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())
    if args.answers:
        found = [[[r.item.item_id, r.score] for r in engine.recommend(q)] for q in queries]
        args.answers.write_text(json.dumps(stamped({"answers": found})))
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
