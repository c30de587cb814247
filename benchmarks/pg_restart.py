"""Starts over a PostgreSQL catalogue with the default index path, two source trees in turns.

Without ``COLDBREW_INDEX_PATH``, a service over PostgreSQL used to build its item index (HNSW,
or IVF-PQ from 250,000 items) at every start; it now saves it under ``.coldbrew/index`` in its
working directory and reuses it. This starts a local PostgreSQL (``pgserver``), fills it with
``--items`` synthetic items (the hashing encoder's vectors are stored by the first start), then
starts an engine from each tree in turns, each tree in a working directory of its own, and
records seconds to ready, whether the start built the index, and the close::

    python benchmarks/pg_restart.py --before /path/to/main --after . --items 100000 --turns 3 \
        --out benchmarks/results/million/pg-restart.json

The first start of ``--after`` builds and saves; the later ones should reuse. Not part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from encode_ab import commit

from coldbrew.bench.provenance import begin, stamped

START = """
import json, os, sys, time
from coldbrew.config.settings import Settings
from coldbrew.live.engine import Engine, Serving
from coldbrew.store import Store
from coldbrew.text import HashingEncoder
url, models = sys.argv[1], sys.argv[2]
path = Settings(db_url=url).graph_path()
t = time.perf_counter()
engine = Engine(Store(url), HashingEncoder(384), index="auto", graph_path=path,
                serving=Serving(model="zeroshot", models_dir=models)).load()
ready = time.perf_counter() - t
built = engine.saver is not None
t = time.perf_counter()
engine.close()
closed = round(time.perf_counter() - t, 2)
print(json.dumps({"ready_s": round(ready, 2), "built_index": built, "close_s": closed,
                  "index": type(engine.index).__name__, "items": len(engine.index),
                  "graph_path": path, "load1": os.getloadavg()[0]}))
"""
WORDS = ["tent", "jacket", "lamp", "stove", "boots", "map", "rope", "mug"]


def fill(url: str, n: int) -> None:
    from coldbrew.store import Item, Store

    store = Store(url)
    for first in range(0, n, 10_000):
        with store.transaction() as session:
            batch = range(first, min(first + 10_000, n))
            items = [
                Item(f"i{j}", f"{WORDS[j % 8]} {WORDS[(j // 8) % 8]} no {j}", f"a {j % 101}")
                for j in batch
            ]
            store.upsert_items(session, items)
    store.close()


def start(tree: Path, url: str, work: Path) -> dict[str, object]:
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OPENBLAS_NUM_THREADS": "1"}
    argv = [sys.executable, "-c", START, url, str(work / "models")]
    done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the tree measured against")
    parser.add_argument("--after", type=Path, required=True, help="the tree measured")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import pgserver

    started = begin()

    with tempfile.TemporaryDirectory(prefix="pg-restart-") as scratch:
        root = Path(scratch)
        server = pgserver.get_server(root / "pg", cleanup_mode="stop")
        url = server.get_uri()
        fill(url, args.items)
        warm = start(args.before, url, root / "warm")  # encodes and stores every vector
        print("warm-up", warm, flush=True)
        runs: list[dict[str, object]] = []
        for turn in range(args.turns):
            for name, tree in (("before", args.before), ("after", args.after)):
                run = {"turn": turn, "tree": name, **start(tree, url, root / name)}
                print(run, flush=True)
                runs.append(run)
        server.cleanup()
    report = {
        "meta": {
            "items": args.items,
            "before": commit(str(args.before)),
            "after": commit(str(args.after)),
            "cpu_count": os.cpu_count(),
        },
        "warm_up": warm,
        "runs": runs,
        "summary": {
            name: {
                "ready_s": [r["ready_s"] for r in runs if r["tree"] == name],
                "built_index": [r["built_index"] for r in runs if r["tree"] == name],
            }
            for name in ("before", "after")
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(stamped(report, started), indent=1) + "\n")
    print(json.dumps(report["summary"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
