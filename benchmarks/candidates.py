"""Scoring every item vs scoring candidates: the served hybrid on a large synthetic catalogue.

Builds a catalogue of product-like items (``load.py``'s generator; vectors from the real encoder
through the embedding cache, or ``--encoder hashing`` for a quick run), users who each prefer a
kind of thing (80% of their likes; the rest anywhere), fits the service's hybrid in-process
(``Engine.refit_now``: the same job the service runs in the background), then asks the engine for
recommend-by-user-id, once scoring every item and once scoring candidates only, on the same
queries, and reports latency percentiles of both and the recall of the candidate top-20 against
the full top-20.

    OPENBLAS_NUM_THREADS=1 python benchmarks/candidates.py --items 100000 --encoder default
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from load import catalogue_rows, item_vectors

from coldbrew.bench.provenance import stamped
from coldbrew.live.answers import Query
from coldbrew.live.engine import Engine, Serving
from coldbrew.models.query import UserQuery
from coldbrew.store import Interaction, Item, Store, User
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import make_encoder


def interactions(rows: list[dict[str, Any]], n_users: int, per_user: int) -> list[Interaction]:
    """Each user likes ``per_user`` items, 80% of a favourite thing (popular ones more often)."""
    rng = np.random.default_rng(1)
    by_thing: dict[str, list[int]] = {}
    for n, row in enumerate(rows):
        by_thing.setdefault(row["attributes"]["category"], []).append(n)
    things = sorted(by_thing)
    out = []
    for u in range(n_users):
        pool = by_thing[things[u % len(things)]]
        for j in range(per_user):
            if rng.random() < 0.8:
                n = pool[min(int(rng.zipf(1.5)) - 1, len(pool) - 1)]
            else:
                n = int(rng.integers(len(rows)))
            out.append(Interaction(f"x{u}-{j}", f"u{u}", rows[n]["item_id"], "like", float(j)))
    return out


DB = "big.sqlite"
MODELS = "models"


def seeded_engine(
    folder: Path,
    encoder: Encoder,
    rows: list[dict[str, Any]],
    vectors: np.ndarray,
    n_users: int,
    per_user: int,
) -> Engine:
    """``rows`` and their ``vectors`` in a new SQLite store in ``folder`` (:data:`DB`), with
    ``n_users`` users and their likes, served by an engine that refits only when asked (its
    versions in ``folder/MODELS``). Nothing is fitted yet."""
    items = [Item(r["item_id"], r["title"], r["description"], r["attributes"]) for r in rows]
    store = Store(str(folder / DB))
    with store.transaction() as session:
        store.register_model(session, encoder.name, encoder.config(), encoder.dim)
        store.upsert_items(session, items)
        store.put_vectors(session, "item", encoder.name, [i.item_id for i in items], vectors)
    serving = Serving(models_dir=str(folder / MODELS), refit_every=0, refit_minutes=0)
    engine = Engine(store, encoder, serving=serving).load()
    engine.upsert_users([User(f"u{u}") for u in range(n_users)])
    engine.add_interactions(interactions(rows, n_users, per_user))
    return engine


def timed(engine: Engine, queries: list[Query]) -> tuple[list[list[str]], np.ndarray]:
    found, seconds = [], []
    for query in queries:
        start = time.perf_counter()
        answer = engine.recommend(query)
        seconds.append(time.perf_counter() - start)
        found.append([r.item.item_id for r in answer])
    return found, np.asarray(seconds)


def during_refit(engine: Engine, queries: list[Query]) -> tuple[np.ndarray, float]:
    """Request latencies while a refit runs in its background process (as the service runs
    it: another process, low priority), cycling through ``queries`` until it ends."""
    assert engine.refit() == "started"
    start = time.perf_counter()
    seconds = []
    while engine.refitter is not None and engine.refitter.running:
        for query in queries[:50]:
            t = time.perf_counter()
            engine.recommend(query)
            seconds.append(time.perf_counter() - t)
    return np.asarray(seconds), time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--cache-dir", type=Path, default=Path(".coldbrew/cache"))
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the database and models here (for candidates_ab.py)",
    )
    args = parser.parse_args()
    load_start = os.getloadavg()
    encoder = make_encoder(args.encoder)
    rows = catalogue_rows(args.items)
    vectors = item_vectors(rows, encoder, "text", args.cache_dir)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(args.keep or scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        engine = seeded_engine(tmp, encoder, rows, vectors, args.users, args.per_user)
        serving, store = engine.serving, engine.store
        start = time.perf_counter()
        outcome = engine.refit_now()
        fit_seconds = time.perf_counter() - start
        rng = np.random.default_rng(2)
        users = rng.choice(args.users, args.queries, replace=False)
        queries = [Query(UserQuery(user_id=f"u{u}"), k=20, explain=False) for u in users]
        engine.serving = dataclasses.replace(serving, score_all_below=10**9)
        timed(engine, queries[:10])  # warm caches
        full, full_s = timed(engine, queries)
        engine.serving = dataclasses.replace(serving, score_all_below=0)
        timed(engine, queries[:10])
        cand, cand_s = timed(engine, queries)
        during, refit_ran = during_refit(engine, queries)
        recall = np.mean([len(set(a) & set(b)) / max(1, len(a)) for a, b in zip(full, cand)])
        sizes = [
            len(engine.candidates(engine.model, *engine.user_query(q.user))) for q in queries[:50]
        ]
        store.close()
    figures = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "items": args.items,
        "users": args.users,
        "interactions": args.users * args.per_user,
        "encoder": encoder.name,
        "model": f"{engine.info.kind} {engine.info.version}",
        "refit_seconds": round(fit_seconds, 1),
        "refit_validation": outcome["validation"],
        "candidates_per_query": int(np.mean(sizes)),
        "full_ms": {p: round(float(np.percentile(full_s, p)) * 1e3, 1) for p in (50, 99)},
        "candidates_ms": {p: round(float(np.percentile(cand_s, p)) * 1e3, 1) for p in (50, 99)},
        "candidates_during_refit_ms": {
            p: round(float(np.percentile(during, p)) * 1e3, 1) for p in (50, 99)
        },
        "queries_during_refit": len(during),
        "refit_in_background_seconds": round(refit_ran, 1),
        "recall_at_20": round(float(recall), 4),
        "queries": args.queries,
        "load_average": {"start": load_start, "end": os.getloadavg()},
    }
    figures = stamped(figures)
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
