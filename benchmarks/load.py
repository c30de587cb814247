"""Load benchmark of ``coldbrew serve`` on loopback against a synthetic 100k-item catalogue.

Measures p50/p99 latency and throughput of recommend-by-user-id, recommend-by-free-text and item
upsert, the time from an item's upsert to it being recommended, and the server's memory.

The catalogue is synthetic: item rows and random unit vectors are written straight into the
store under the real encoder's model name (encoding 100k texts would take minutes and does not
change search cost, which depends only on the number of items and the dimension). Everything a
request does at run time is real: text queries and upserted items are encoded by the real
encoder, users' vectors come from their own text and liked items.

    nice -n 10 python benchmarks/load.py --items 100000 --encoder default
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
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
from sqlalchemy import insert

from coldbrew.store import Store
from coldbrew.store.tables import InteractionRow, ItemRow, UserRow, VectorRow
from coldbrew.text.factory import make_encoder

KEY = "bench-key"
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


def seed(
    db: Path, n_items: int, n_users: int, model: str, dim: int, config: dict[str, Any]
) -> None:
    """Write the synthetic catalogue, users and interactions straight into the store."""
    rng = np.random.default_rng(0)
    store = Store(str(db))
    with store.transaction() as session:
        store.register_model(session, model, config, dim)
    chunk = 5000
    for start in range(0, n_items, chunk):
        rows, vectors = [], []
        for n in range(start, min(start + chunk, n_items)):
            colour, thing, use = COLOURS[n % 10], THINGS[n % 23], USES[n % 14]
            rows.append(
                {
                    "item_id": f"i{n}",
                    "title": f"{colour} {thing} no. {n}",
                    "description": f"A {colour} {thing} for {use}.",
                    "attributes": {"category": thing, "use": use},
                }
            )
        block = rng.standard_normal((len(rows), dim)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        vectors = [
            {
                "kind": "item",
                "owner_id": r["item_id"],
                "model": model,
                "dim": dim,
                "data": v.tobytes(),
            }
            for r, v in zip(rows, block)
        ]
        with store.transaction() as session:
            session.execute(insert(ItemRow), rows)
            session.execute(insert(VectorRow), vectors)
    users = [
        {"user_id": f"u{n}", "text": TEXTS[n % len(TEXTS)], "attributes": {"age": "25-34"}}
        for n in range(n_users)
    ]
    inters = [
        {
            "interaction_id": f"x{u}-{j}",
            "user_id": f"u{u}",
            "item_id": f"i{int(rng.integers(n_items))}",
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


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
    }


def timed(client: httpx.Client, method: str, path: str, body: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    response = client.request(method, path, json=body, headers={"X-API-Key": KEY})
    took = time.perf_counter() - start
    response.raise_for_status()
    return took, response.json()


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
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = parser.parse_args()

    encoder = make_encoder(args.encoder)
    with tempfile.TemporaryDirectory(prefix="coldbrew-load-") as tmp:
        db = Path(tmp) / "load.sqlite"
        start = time.perf_counter()
        seed(db, args.items, args.users, encoder.name, encoder.dim, encoder.config())
        seed_s = time.perf_counter() - start
        print(f"seeded {args.items:,} items and {args.users:,} users in {seed_s:.1f}s", flush=True)
        del encoder
        env = {**os.environ, "COLDBREW_API_KEYS": KEY, "OPENBLAS_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "coldbrew", "serve", "--db", str(db)]
        command += ["--encoder", args.encoder, "--port", str(args.port)]
        server = subprocess.Popen(command, env=env)
        base = f"http://127.0.0.1:{args.port}"
        try:
            start = time.perf_counter()
            with httpx.Client(base_url=base, timeout=60) as client:
                while True:
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if server.poll() is not None:
                        raise RuntimeError("the server exited during start-up")
                    time.sleep(0.2)
                ready_s = time.perf_counter() - start
                print(f"server ready in {ready_s:.1f}s", flush=True)
                results = run_all(client, base, args)
            results["startup_s"] = round(ready_s, 1)
            results["rss_mb"] = round(psutil.Process(server.pid).memory_info().rss / 2**20, 1)
        finally:
            server.terminate()
            server.wait(timeout=30)
    results.update(
        {
            "items": args.items,
            "users": args.users,
            "encoder": args.encoder,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus, python "
            f"{platform.python_version()}",
            "command": " ".join(sys.argv),
        }
    )
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def run_all(client: httpx.Client, base: str, args: argparse.Namespace) -> dict[str, Any]:
    rnd = random.Random(0)
    by_id = [
        {"user_id": f"u{rnd.randrange(args.users)}", "k": 10, "explain": False}
        for _ in range(args.requests)
    ]
    by_text = [
        {
            "text": f"{rnd.choice(TEXTS)} {rnd.choice(USES)} {rnd.choice(COLOURS)}",
            "k": 10,
            "explain": False,
        }
        for _ in range(args.requests)
    ]
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
