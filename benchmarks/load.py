"""Load benchmark of ``coldbrew serve`` on loopback against a synthetic 100k-item catalogue.

Measures p50/p99 latency and throughput of recommend-by-user-id, recommend-by-free-text and item
upsert, the time from an item's upsert to it being recommended, and the server's memory.

The catalogue is synthetic (product-like titles and descriptions drawn from small word lists),
but its vectors are real: each item's text is encoded by the real encoder once, through an
embedding cache (``--cache-dir``; 10-15 minutes for 100k items on 2 cores the first time),
and written straight into the store with the item rows, so the server starts without encoding
them. Random unit vectors (``--vectors random``) are the worst case for a graph index and
unlike any real text embedding; they are kept for comparison. Everything a request does at run
time is real: text queries and upserted items are encoded by the real encoder, users' vectors
come from their own text and liked items. The served answers to text queries are checked
against an exact scan over the same vectors (recall@10), so a fast index cannot hide a wrong
one.

    OPENBLAS_NUM_THREADS=1 python benchmarks/load.py --items 100000 --encoder default
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from liveserver import KEY, percentiles, start_server, stop_server, timed
from sqlalchemy import insert

from coldbrew.bench.provenance import stamped
from coldbrew.live.records import item_text
from coldbrew.store import Item, Store
from coldbrew.store.tables import InteractionRow, ItemRow, UserRow, VectorRow
from coldbrew.text.cache import EmbeddingCache
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import make_encoder
from coldbrew.text.runtime import RUNTIMES

COLOURS = ["red", "blue", "green", "black", "white", "grey", "brown", "yellow", "orange", "purple"]
THINGS = [
    "jacket",
    "parka",
    "boots",
    "tent",
    "lamp",
    "kettle",
    "novel",
    "keyboard",
    "mouse",
    "chair",
    "desk",
    "scarf",
    "camera",
    "backpack",
    "bottle",
    "pan",
    "knife",
    "guitar",
    "sofa",
    "blanket",
    "umbrella",
    "watch",
    "speaker",
]
USES = [
    "hiking",
    "camping",
    "cooking",
    "gaming",
    "reading",
    "travel",
    "office",
    "winter",
    "summer",
    "kids",
    "running",
    "music",
    "photography",
    "gardening",
]
MATERIALS = ["cotton", "wool", "leather", "steel", "oak", "bamboo", "nylon", "glass", "ceramic"]
TRAITS = [
    "lightweight",
    "waterproof",
    "compact",
    "durable",
    "handmade",
    "quiet",
    "foldable",
    "vintage",
    "ergonomic",
    "insulated",
    "rechargeable",
    "minimalist",
]
TEXTS = [
    "I need a light jacket for a spring outing",
    "a warm blanket for cold winter nights",
    "something for my kid who loves dinosaurs",
    "gear for a weekend camping trip in the mountains",
    "a quiet mechanical keyboard for the office",
    "a good science fiction novel",
    "cookware for a small kitchen",
    "a gift for a photographer friend",
]


def catalogue_rows(n_items: int) -> list[dict[str, Any]]:
    """Product-like items: about 10 million distinct title/description combinations."""
    rng = random.Random(0)
    rows = []
    for n in range(n_items):
        colour, thing, use, use2 = (
            rng.choice(COLOURS),
            rng.choice(THINGS),
            rng.choice(USES),
            rng.choice(USES),
        )
        trait, material = rng.choice(TRAITS), rng.choice(MATERIALS)
        rows.append(
            {
                "item_id": f"i{n}",
                "title": f"{trait} {colour} {thing} no. {n}",
                "description": f"A {material} {thing} for {use} and {use2}.",
                "attributes": {"category": thing, "use": use},
            }
        )
    return rows


def item_vectors(
    rows: list[dict[str, Any]], encoder: Encoder, kind: str, cache_dir: Path
) -> np.ndarray:
    """The rows' vectors: their text encoded (cached), or random unit vectors."""
    if kind == "random":
        block = np.random.default_rng(0).standard_normal((len(rows), encoder.dim))
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        return block.astype(np.float32)
    texts = [
        item_text(Item(r["item_id"], r["title"], r["description"], r["attributes"])) for r in rows
    ]
    return EmbeddingCache(cache_dir).encode(encoder, texts, show_progress=True)


def seed(
    db: Path, rows: list[dict[str, Any]], vectors: np.ndarray, n_users: int, encoder: Encoder
) -> None:
    """Write the catalogue, its vectors, users and interactions straight into the store."""
    rng = np.random.default_rng(0)
    store = Store(str(db))
    model, dim = encoder.name, encoder.dim
    with store.transaction() as session:
        store.register_model(session, model, encoder.config(), dim)
    chunk = 5000
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        vector_rows = [
            {
                "kind": "item",
                "owner_id": r["item_id"],
                "model": model,
                "dim": dim,
                "data": v.tobytes(),
            }
            for r, v in zip(block, vectors[start : start + chunk])
        ]
        with store.transaction() as session:
            session.execute(insert(ItemRow), block)
            session.execute(insert(VectorRow), vector_rows)
    users = [
        {"user_id": f"u{n}", "text": TEXTS[n % len(TEXTS)], "attributes": {"age": "25-34"}}
        for n in range(n_users)
    ]
    inters = [
        {
            "interaction_id": f"x{u}-{j}",
            "user_id": f"u{u}",
            "item_id": f"i{int(rng.integers(len(rows)))}",
            "event": "like",
            "timestamp": float(j),
        }
        for u in range(n_users)
        for j in range(5)
    ]
    with store.transaction() as session:
        session.execute(insert(UserRow), users)
        session.execute(insert(InteractionRow), inters)
    store.close()


def snapshot(client: httpx.Client, args: argparse.Namespace) -> list[Any]:
    """Answers to 25 users and 25 texts, to compare before and after a restart."""
    bodies: list[dict[str, Any]] = [
        {"user_id": f"u{n}", "k": 10, "explain": False} for n in range(0, args.users, 40)
    ][:25]
    bodies += [{"text": t, "k": 10, "explain": False} for t in text_queries(25, seed=2)]
    return [
        [(r["item_id"], r["score"]) for r in timed(client, "POST", "/recommend", b)[1]["items"]]
        for b in bodies
    ]


def latency(
    client: httpx.Client, path: str, bodies: list[Any], warmup: int = 20
) -> dict[str, float]:
    for body in bodies[:warmup]:
        timed(client, "POST", path, body)
    return percentiles([timed(client, "POST", path, body)[0] for body in bodies])


def throughput(base: str, path: str, bodies: list[Any], threads: int, seconds: float) -> float:
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(w: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            n = w
            while time.perf_counter() < stop:
                timed(client, "POST", path, bodies[n % len(bodies)])
                done[w] += 1
                n += threads

    pool = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return round(sum(done) / (time.perf_counter() - start), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--requests", type=int, default=500, help="per latency measurement")
    parser.add_argument("--threads", type=int, default=4, help="client threads for throughput")
    parser.add_argument("--seconds", type=float, default=10.0, help="per throughput measurement")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--vectors", choices=("encoded", "random"), default="encoded")
    parser.add_argument("--index", choices=("auto", "exact", "hnsw"), default="auto")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(".coldbrew/cache"), help="embedding cache"
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = parser.parse_args()

    encoder = make_encoder(args.encoder)
    with tempfile.TemporaryDirectory(prefix="coldbrew-load-") as tmp:
        db = Path(tmp) / "load.sqlite"
        rows = catalogue_rows(args.items)
        start = time.perf_counter()
        vectors = item_vectors(rows, encoder, args.vectors, args.cache_dir)
        print(f"{args.vectors} vectors in {time.perf_counter() - start:.1f}s", flush=True)
        start = time.perf_counter()
        seed(db, rows, vectors, args.users, encoder)
        seed_s = time.perf_counter() - start
        print(f"seeded {args.items:,} items and {args.users:,} users in {seed_s:.1f}s", flush=True)
        env = {**os.environ, "COLDBREW_API_KEYS": KEY, "OPENBLAS_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "coldbrew", "serve", "--db", str(db)]
        command += ["--encoder", args.encoder, "--port", str(args.port), "--index", args.index]
        command += ["--runtime", args.runtime]
        base = f"http://127.0.0.1:{args.port}"
        server, ready_s = start_server(command, env, base)
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                results: dict[str, Any] = {
                    "recall_at_10": served_recall(client, encoder, vectors, args)
                }
                print("recall@10 of served text answers vs exact", results["recall_at_10"])
                results.update(run_all(client, base, args))
                before = snapshot(client, args)
            results["startup_s"] = round(ready_s, 1)
            results["rss_mb"] = round(psutil.Process(server.pid).memory_info().rss / 2**20, 1)
        finally:
            stop_server(server)
        # a restart: the service rebuilds from the database (and its saved graph, if any)
        server, ready_s = start_server(command, env, base)
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                after = snapshot(client, args)
        finally:
            stop_server(server)
        same = sum(a == b for a, b in zip(after, before))
        results["restart"] = {"ready_s": round(ready_s, 1), "identical": f"{same}/{len(before)}"}
        print("restart", results["restart"], flush=True)
    results.update(
        {
            "items": args.items,
            "users": args.users,
            "encoder": args.encoder,
            "vectors": args.vectors,
            "index": args.index,
            "runtime": args.runtime,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus, python "
            f"{platform.python_version()}",
            "command": " ".join(sys.argv),
        }
    )
    results = stamped(results)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def text_queries(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return [f"{rnd.choice(TEXTS)} {rnd.choice(USES)} {rnd.choice(COLOURS)}" for _ in range(n)]


def served_recall(
    client: httpx.Client, encoder: Encoder, vectors: np.ndarray, args: argparse.Namespace
) -> float:
    """Mean overlap of the served top-10 with an exact scan, for 100 text queries."""
    texts = text_queries(100, seed=1)
    queries = encoder.encode(texts, kind="query")
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    overlaps = []
    for text, best in zip(texts, exact):
        _, body = timed(client, "POST", "/recommend", {"text": text, "k": 10, "explain": False})
        served = {r["item_id"] for r in body["items"]}
        overlaps.append(len(served & {f"i{j}" for j in best}) / 10)
    return round(float(np.mean(overlaps)), 3)


def run_all(client: httpx.Client, base: str, args: argparse.Namespace) -> dict[str, Any]:
    rnd = random.Random(0)
    by_id = [
        {"user_id": f"u{rnd.randrange(args.users)}", "k": 10, "explain": False}
        for _ in range(args.requests)
    ]
    by_text = [{"text": t, "k": 10, "explain": False} for t in text_queries(args.requests, 0)]
    explained = [{**b, "explain": True} for b in by_text]
    out: dict[str, Any] = {}
    out["by_id"] = latency(client, "/recommend", by_id)
    print("by id", out["by_id"], flush=True)
    out["by_text"] = latency(client, "/recommend", by_text)
    print("by text", out["by_text"], flush=True)
    out["by_text_explained"] = latency(client, "/recommend", explained)
    print("by text, explained", out["by_text_explained"], flush=True)
    out["by_id_rps"] = throughput(base, "/recommend", by_id, args.threads, args.seconds)
    print("by id req/s", out["by_id_rps"], flush=True)
    out["by_text_rps"] = throughput(base, "/recommend", by_text, args.threads, args.seconds)
    print("by text req/s", out["by_text_rps"], flush=True)
    upserts = [
        {
            "id": f"new{n}",
            "title": f"{rnd.choice(COLOURS)} {rnd.choice(THINGS)} special {n}",
            "description": f"A brand new {rnd.choice(THINGS)} for {rnd.choice(USES)}.",
            "attributes": {"category": "new"},
        }
        for n in range(args.requests // 2)
    ]
    out["upsert"] = percentiles([timed(client, "POST", "/items", u)[0] for u in upserts])
    print("upsert", out["upsert"], flush=True)
    visible, found = [], 0
    for n in range(50):
        item = {
            "id": f"fresh{n}",
            "title": f"zephyr quokka lantern {n}",
            "description": f"A one-off test item number {n} for the visibility check.",
        }
        start = time.perf_counter()
        timed(client, "POST", "/items", item)
        _, recs = timed(
            client, "POST", "/recommend", {"text": item["title"], "k": 10, "explain": False}
        )
        visible.append(time.perf_counter() - start)
        found += any(r["item_id"] == item["id"] for r in recs["items"])
    out["upsert_to_recommended"] = {**percentiles(visible), "found_on_first_request": f"{found}/50"}
    print("upsert -> recommended", out["upsert_to_recommended"], flush=True)
    return out


if __name__ == "__main__":
    sys.exit(main())
