"""One start of a `coldbrew serve` replica over a ``million.py`` database: resident memory at ready.

The service as ``million.py`` starts it (``--model zeroshot --index auto``, int8 rows), its tree
RSS at ``/readyz`` (and the peak the start reached) and after 20 by-id requests (``u0``..``u19``,
k = 10; ``--requests`` for more, the first 20 top-10 lists kept to compare two checkouts'
answers). A saved index next to the database is reused; without one, the start builds and saves
it. For memory side by side when a full ``million.py`` run (two starts, latency, recall) does
not fit the time a busy machine leaves. ``--recall`` also scores the first 100 by-id answers
against an exact float32 scan of the database's vectors, made again from ``million.py``'s seed
(its ``--items`` and ``--noise`` read from the database's name), as ``million.py`` does.

    cd CHECKOUT && PYTHONPATH=$PWD/src:$PWD/benchmarks OPENBLAS_NUM_THREADS=1 nice -n 19 \\
        python benchmarks/million_start.py /tmp/mil/million-1000000-1.0-int8.sqlite --out x.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import httpx
import numpy as np
from liveserver import KEY, start_server, stop_server, tree_rss_mb, tree_status_mb

from coldbrew.bench.provenance import stamped


def recall_by_id(db_name: str, served: list[list[str]]) -> float:
    """Recall@10 of users ``u0``.. against an exact scan, as ``million.py`` measures it."""
    from million import clustered, exact_top, liked_items, overlap

    from coldbrew.models.zeroshot import liked_vector

    _, items, noise, _ = db_name.split("-")  # million-ITEMS-NOISE-DTYPE.sqlite
    vectors, labels = clustered(int(items), float(noise))
    likes = liked_items(labels, 1000)[: len(served)]
    users = np.stack([liked_vector(vectors[liked], 0.9) for liked in likes])
    return overlap(served, exact_top(users, vectors, likes, 10))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", help="a million.py database (SQLite file)")
    parser.add_argument("--port", type=int, default=8798)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--requests", type=int, default=20, help="by-id requests after ready (users u0, u1...)"
    )
    parser.add_argument(
        "--recall", action="store_true", help="recall@10 by id against million.py's vectors"
    )
    args = parser.parse_args()
    env = {**os.environ, "COLDBREW_API_KEYS": KEY, "OPENBLAS_NUM_THREADS": "1"}
    env.update({"COLDBREW_KEY_RATE_LIMIT": "100000/second", "COLDBREW_VECTOR_DTYPE": "int8"})
    command = [sys.executable, "-m", "coldbrew", "serve", "--db", args.db, "--model", "zeroshot"]
    command += ["--encoder", "default", "--index", "auto", "--port", str(args.port)]
    base = f"http://127.0.0.1:{args.port}"
    server, ready_s = start_server(command, env, base, timeout_s=1080)
    out = {"startup_s": round(ready_s, 1), "rss_mb_ready": round(tree_rss_mb(server.pid), 1)}
    out["peak_mb_ready"] = round(tree_status_mb(server.pid), 1)  # the start's transient peak
    out["rss_file_mb_ready"] = round(tree_status_mb(server.pid, "RssFile"), 1)
    out["load_average_at_ready"] = list(os.getloadavg())
    try:
        with httpx.Client(base_url=base, timeout=120, headers={"x-api-key": KEY}) as client:
            bodies = [{"user_id": f"u{u}", "k": 10, "explain": False} for u in range(args.requests)]
            answers = [client.post("/recommend", json=body).json() for body in bodies]
        served = [[r["item_id"] for r in a["items"]] for a in answers]
        out["answers_by_id"] = served[:20]
        out["requests"] = len(answers)
        out["rss_mb_after"] = round(tree_rss_mb(server.pid), 1)
        out["rss_file_mb_after"] = round(tree_status_mb(server.pid, "RssFile"), 1)
    finally:
        stop_server(server)
    if args.recall:
        out["recall_at_10_by_id"] = recall_by_id(Path(args.db).name, served[:100])
    report = stamped(out)
    print(json.dumps({k: v for k, v in report.items() if k != "answers_by_id"}))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
