"""A million items: one `coldbrew serve` replica's memory, start-up, latency and served recall.

The catalogue is synthetic, made to have the cluster structure of text embeddings: 384-d vectors
(MiniLM's width) around 2,000 centres drawn from a standard normal and normalised; each item is
its centre (a uniformly drawn cluster) plus isotropic Gaussian noise scaled to norm ``--noise``
(1.0: cosine ~0.71 to its centre, ~0.5 to another item of its cluster, ~0 across clusters),
normalised. Items are short product-like rows with one attribute, bulk-inserted into a SQLite
database; their vectors go in through ``Store.put_vectors`` (float16 by default) under the real
encoder's name, so the service starts without encoding anything. Users know nothing but their 5
liked items, all from one cluster: recommend-by-user-id is answered from stored vectors alone.
Text queries are encoded for real by the service's MiniLM (they land anywhere in this synthetic
space, unlike a real catalogue's queries: a hard case for an approximate index).

``--catalogue shop`` uses real text embeddings instead (fewer items: encoding is the cost):
``load.py``'s product rows (title, description, kind of thing and use), encoded by the service's
encoder through an embedding cache (``--cache-dir``), each item's kind of thing as its cluster.

The service serves the zero-shot model (``--model zeroshot``: no refit; a hybrid refit at a
million items is out of this benchmark's scope). It measures: start-up to ``/readyz`` (building
the IVF-PQ index the first time, reusing the saved one at the restart), resident memory,
by-id and by-text p50/p99 (sequential, ``explain: false``), and the served top-10 against an
exact float32 scan of the original vectors (before float16), for by-id users (the user vector as
the zero-shot model makes it: the recency-weighted mean of the liked items) and text queries.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/million.py --items 1000000 \
        --db-dir /tmp/coldbrew-million --out benchmarks/results/million/million-1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from liveserver import KEY, percentiles, start_server, stop_server, timed, tree_rss_mb
from load import USES, catalogue_rows, item_vectors, text_queries
from sqlalchemy import insert

from coldbrew.bench.provenance import stamped
from coldbrew.models.zeroshot import liked_vector
from coldbrew.store import Store
from coldbrew.store.tables import InteractionRow, ItemRow, UserRow
from coldbrew.text.factory import make_encoder

DIM = 384
CLUSTERS = 2000
BLOCK = 50_000


def clustered(n: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit float32 vectors around :data:`CLUSTERS` centres, and each one's cluster."""
    centres = np.random.default_rng(seed).standard_normal((CLUSTERS, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed + 1)
    labels = rng.integers(CLUSTERS, size=n)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        x = rng.standard_normal((stop - start, DIM)).astype(np.float32)
        x *= noise / np.linalg.norm(x, axis=1, keepdims=True)
        x += centres[labels[start:stop]]
        out[start:stop] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, labels


def liked_items(labels: np.ndarray, n_users: int) -> list[list[int]]:
    """Five items of one random cluster per user."""
    rng = np.random.default_rng(7)
    members: dict[int, np.ndarray] = {}
    out = []
    for _ in range(n_users):
        cluster = int(labels[rng.integers(len(labels))])  # a cluster with members
        if cluster not in members:
            members[cluster] = np.flatnonzero(labels == cluster)
        pool = members[cluster]
        out.append([int(i) for i in rng.choice(pool, 5, replace=len(pool) < 5)])
    return out


def synthetic_rows(labels: np.ndarray) -> list[dict[str, Any]]:
    """Short product-like rows for the synthetic vectors, one attribute each."""
    return [
        {
            "item_id": f"i{n}",
            "title": f"{USES[int(label) % len(USES)]} item {n}",
            "description": f"topic {int(label)}",
            "attributes": {"topic": f"t{int(label) % 100}"},
        }
        for n, label in enumerate(labels)
    ]


def shop(
    n: int, encoder_spec: str, cache_dir: Path
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """``load.py``'s product catalogue with its texts encoded for real (through the embedding
    cache in ``cache_dir``), and each item's kind of thing as its cluster."""
    rows = catalogue_rows(n)
    vectors = item_vectors(rows, make_encoder(encoder_spec), "text", cache_dir)
    things = sorted({r["attributes"]["category"] for r in rows})
    labels = np.array([things.index(r["attributes"]["category"]) for r in rows])
    return rows, vectors, labels


def build(
    db: Path, rows: list[dict[str, Any]], vectors: np.ndarray, likes: list[list[int]], args: Any
) -> None:
    """Items and users in bulk, vectors through ``Store.put_vectors`` (the store's format)."""
    encoder = make_encoder(args.encoder)
    store = Store(str(db), vector_dtype=args.dtype)
    with store.transaction() as session:
        store.register_model(session, encoder.name, encoder.config(), encoder.dim)
    for start in range(0, len(vectors), BLOCK):
        block = rows[start : start + BLOCK]
        with store.transaction() as session:
            session.execute(insert(ItemRow), block)
            ids = [r["item_id"] for r in block]
            store.put_vectors(session, "item", encoder.name, ids, vectors[start : start + BLOCK])
    users = [{"user_id": f"u{u}", "text": "", "attributes": {}} for u in range(len(likes))]
    inters = [
        {
            "interaction_id": f"x{u}-{j}",
            "user_id": f"u{u}",
            "item_id": f"i{n}",
            "event": "like",
            "timestamp": float(j),
        }
        for u, items in enumerate(likes)
        for j, n in enumerate(items)
    ]
    with store.transaction() as session:
        session.execute(insert(UserRow), users)
        session.execute(insert(InteractionRow), inters)
    store.close()


def exact_top(
    queries: np.ndarray, vectors: np.ndarray, banned: list[list[int]], k: int
) -> np.ndarray:
    """Exact top-``k`` rows per query over float32 ``vectors``, skipping its ``banned`` rows."""
    scores = np.concatenate(
        [queries @ vectors[s : s + 200_000].T for s in range(0, len(vectors), 200_000)], axis=1
    )
    for q, rows in enumerate(banned):
        scores[q, rows] = -np.inf
    return np.argsort(-scores, axis=1)[:, :k]


def overlap(served: list[list[str]], exact: np.ndarray) -> float:
    return round(
        float(
            np.mean([len(set(s) & {f"i{j}" for j in e}) / len(e) for s, e in zip(served, exact)])
        ),
        4,
    )


def serve(args: Any, db: Path, vectors: np.ndarray, likes: list[list[int]]) -> dict[str, Any]:
    """Start the service, measure it, stop it."""
    env = {**os.environ, "COLDBREW_API_KEYS": KEY, "OPENBLAS_NUM_THREADS": "1"}
    env.update({"COLDBREW_KEY_RATE_LIMIT": "100000/second", "COLDBREW_VECTOR_DTYPE": args.dtype})
    command = [sys.executable, "-m", "coldbrew", "serve", "--db", str(db), "--model", "zeroshot"]
    command += ["--encoder", args.encoder, "--index", args.index, "--port", str(args.port)]
    base = f"http://127.0.0.1:{args.port}"
    load_before = os.getloadavg()
    server, ready_s = start_server(command, env, base, timeout_s=900)
    out: dict[str, Any] = {"startup_s": round(ready_s, 1), "load_average_at_start": load_before}
    out["rss_mb_ready"] = round(tree_rss_mb(server.pid), 1)
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            out.update(measure(client, args, vectors, likes))
        out["rss_mb_after"] = round(tree_rss_mb(server.pid), 1)
    finally:
        stop_server(server)
    out["load_average_at_end"] = os.getloadavg()
    return out


def measure(
    client: httpx.Client, args: Any, vectors: np.ndarray, likes: list[list[int]]
) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    users = [
        int(u) for u in rng.choice(len(likes), args.requests, replace=len(likes) < args.requests)
    ]
    by_id = [{"user_id": f"u{u}", "k": 10, "explain": False} for u in users]
    texts = text_queries(args.requests, seed=0)
    by_text = [{"text": t, "k": 10, "explain": False} for t in texts]
    out: dict[str, Any] = {}
    for name, bodies in (("by_id", by_id), ("by_text", by_text)):
        for body in bodies[:20]:
            timed(client, "POST", "/recommend", body)
        seconds, served = [], []
        for body in bodies:
            took, answer = timed(client, "POST", "/recommend", body)
            seconds.append(took)
            served.append([r["item_id"] for r in answer["items"]])
        out[name] = percentiles(seconds)
        print(name, out[name], flush=True)
        out[f"_{name}_served"] = served
    # served top-10 vs an exact float32 scan, on the first 100 requests of each kind
    n = min(100, args.requests)
    user_vectors = np.stack([liked_vector(vectors[likes[u]], 0.9) for u in users[:n]])
    exact = exact_top(user_vectors, vectors, [likes[u] for u in users[:n]], 10)
    out["recall_at_10_by_id"] = overlap(out.pop("_by_id_served")[:n], exact)
    encoder = make_encoder(args.encoder)
    queries = encoder.encode(texts[:n], kind="query")
    exact = exact_top(queries, vectors, [[] for _ in range(n)], 10)
    out["recall_at_10_by_text"] = overlap(out.pop("_by_text_served")[:n], exact)
    print("recall@10 by id", out["recall_at_10_by_id"], "by text", out["recall_at_10_by_text"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--dtype", choices=("float16", "int8", "float32"), default="float16")
    parser.add_argument("--index", default="auto")
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--requests", type=int, default=300, help="per latency measurement")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--db-dir", type=Path, required=True, help="kept between runs")
    parser.add_argument(
        "--catalogue",
        choices=("synthetic", "shop"),
        default="synthetic",
        help="synthetic clustered vectors, or load.py's product texts encoded for real",
    )
    parser.add_argument("--cache-dir", type=Path, help="embedding cache for --catalogue shop")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--build-only", action="store_true", help="build the database, start no service"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    if args.catalogue == "shop":
        rows, vectors, labels = shop(args.items, args.encoder, args.cache_dir or args.db_dir)
        made = f"load.py's product texts encoded by {args.encoder}; cluster: kind of thing"
        name = f"shop-{args.items}-{args.dtype}"
    else:
        vectors, labels = clustered(args.items, args.noise)
        rows = synthetic_rows(labels)
        made = f"{DIM}-d, {CLUSTERS} Gaussian clusters, noise {args.noise}, normalised"
        name = f"million-{args.items}-{args.noise}-{args.dtype}"
    likes = liked_items(labels, args.users)
    print(f"vectors made in {time.perf_counter() - start:.1f}s", flush=True)
    db = args.db_dir / f"{name}.sqlite"
    results: dict[str, Any] = {"db_reused": db.exists()}
    if not db.exists():
        args.db_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        build(db, rows, vectors, likes, args)
        results["db_build_s"] = round(time.perf_counter() - start, 1)
        print(f"database built in {results['db_build_s']}s", flush=True)
    results["db_mb"] = round(db.stat().st_size / 2**20, 1)
    if args.build_only:
        print(json.dumps(results))
        return 0
    for index_file in db.parent.glob(db.name + ".hnsw*"):
        index_file.unlink()  # the first start builds the index; the restart reuses it
    results["first_start"] = serve(args, db, vectors, likes)
    results["restart"] = serve(args, db, vectors, likes)
    results.update(
        {
            "items": args.items,
            "users": args.users,
            "catalogue": args.catalogue,
            "vectors": made,
            "dtype": args.dtype,
            "index": args.index,
            "encoder": args.encoder,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "command": " ".join(sys.argv),
        }
    )
    results = stamped(results)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
