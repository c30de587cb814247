"""Recommend by user id over HTTP with the served hybrid on a 100k-item catalogue, also while the
service refits it (issue 12's latency target, measured as a client sees it).

Two steps, so the slow one can run while the machine is busy and the timed one when it is quiet:

1. ``--build``: ``candidates.py``'s catalogue (``load.py``'s product-like items, their vectors
   from ``--encoder``) and users who each like ``--per-user`` items (80% of one kind of thing)
   written into a SQLite store; the service's own refit job (``Engine.refit_now``) fits the
   first hybrid version into ``DIR/models``.
2. ``--measure``: ``coldbrew serve`` over that database and models folder (its defaults: the
   hybrid, scoring candidates from 50,000 items; refits only on request here). Checks
   that the answers come from the hybrid; times ``--requests`` sequential recommend-by-user-id
   calls (k = 20, no explanations; 20 warm-up calls first) and ``--threads`` clients for
   ``--seconds``; then asks for a refit (``POST /admin/refit``) and times the same calls,
   cycling, for as long as the refit runs (at most ``--refit-seconds``), each one checked
   against ``GET /admin/refit``'s running flag; reports the refit's wall time, the version
   served after it, and the server's memory with its refit process.

    OPENBLAS_NUM_THREADS=1 python benchmarks/load_hybrid.py --dir /tmp/lh --build
    OPENBLAS_NUM_THREADS=1 python benchmarks/load_hybrid.py --dir /tmp/lh --measure \
        --out benchmarks/results/service-load/load-hybrid-100k.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from candidates import DB, MODELS, seeded_engine
from liveserver import KEY, free_port, percentiles, start_server, stop_server, timed, tree_rss_mb
from load import catalogue_rows, item_vectors, throughput

from coldbrew.bench.provenance import stamped
from coldbrew.text.factory import make_encoder


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The catalogue, users, likes and a first fitted hybrid in ``args.dir``."""
    args.dir.mkdir(parents=True, exist_ok=True)
    if (args.dir / DB).exists():
        raise SystemExit(f"{args.dir / DB} exists: measure it, or choose another --dir")
    encoder = make_encoder(args.encoder)
    rows = catalogue_rows(args.items)
    vectors = item_vectors(rows, encoder, "text", args.cache_dir)
    engine = seeded_engine(args.dir, encoder, rows, vectors, args.users, args.per_user)
    start = time.perf_counter()
    outcome = engine.refit_now()
    built = {
        "items": args.items,
        "users": args.users,
        "interactions": args.users * args.per_user,
        "encoder": args.encoder,
        "encoder_name": encoder.name,
        "model": f"{engine.info.kind} {engine.info.version}",
        "fit_s": round(time.perf_counter() - start, 1),
        "validation": outcome["validation"],
    }
    engine.close()
    engine.store.close()
    (args.dir / "built.json").write_text(json.dumps(stamped(built), indent=2))
    return built


def during_refit(
    client: httpx.Client, bodies: list[dict[str, Any]], limit_s: float, server_pid: int
) -> dict[str, Any]:
    """Ask for a refit; time by-id requests, cycling, while ``GET /admin/refit`` says it runs."""
    _, asked = timed(client, "POST", "/admin/refit")
    state: dict[str, Any] = {"running": True}
    seconds: list[float] = []
    start = time.perf_counter()
    peak = 0.0
    n = 0
    while time.perf_counter() - start < limit_s:
        took, _ = timed(client, "POST", "/recommend", bodies[n % len(bodies)])
        _, state = timed(client, "GET", "/admin/refit")
        if not state["running"]:
            break  # this request may have overlapped the end: it still counts
        seconds.append(took)
        n += 1
        if n % 200 == 0:
            peak = max(peak, tree_rss_mb(server_pid))
    return {
        "asked": asked.get("status"),
        "requests": percentiles(seconds),
        "ran_s": round(time.perf_counter() - start, 1),
        "finished": not state["running"],
        "after": {k: state.get(k) for k in ("version", "serving", "refits", "outcomes", "last")},
        "peak_rss_mb_server_and_refit": round(peak, 1),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    built = json.loads((args.dir / "built.json").read_text())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "COLDBREW_API_KEYS": KEY, "OPENBLAS_NUM_THREADS": "1"}
    env |= {"COLDBREW_KEY_RATE_LIMIT": "1000000/second"}  # the client is the load, not abuse
    command = [sys.executable, "-m", "coldbrew", "serve", "--db", str(args.dir / DB)]
    command += ["--models-dir", str(args.dir / MODELS), "--encoder", built["encoder"]]
    command += ["--port", str(port), "--refit-every", "0", "--refit-minutes", "0"]
    load_start = os.getloadavg()
    server, ready_s = start_server(command, env, base, timeout_s=600)
    rnd = random.Random(0)
    bodies = [
        {"user_id": f"u{rnd.randrange(built['users'])}", "k": 20, "explain": False}
        for _ in range(args.requests)
    ]
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            _, answer = timed(client, "POST", "/recommend", bodies[0])
            served = (answer["model_kind"], answer["model_version"])
            if served[0] != "hybrid":
                raise SystemExit(f"the service answers with {served}, not the hybrid")
            for body in bodies[:20]:
                timed(client, "POST", "/recommend", body)
            quiet = percentiles([timed(client, "POST", "/recommend", b)[0] for b in bodies])
            print("by id, quiet", quiet, flush=True)
            rps = throughput(base, "/recommend", bodies, args.threads, args.seconds)
            print("by id req/s", rps, flush=True)
            rss_quiet = tree_rss_mb(server.pid)
            refit = during_refit(client, bodies, args.refit_seconds, server.pid)
            print("by id during a refit", refit, flush=True)
    finally:
        stop_server(server)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "built": built,
        "served": {"kind": served[0], "version": served[1]},
        "startup_s": round(ready_s, 1),
        "by_id": quiet,
        "by_id_rps": rps,
        "by_id_during_refit": refit,
        "rss_mb_server": round(rss_quiet, 1),
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "command": " ".join(sys.argv),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="database and models folder")
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--cache-dir", type=Path, default=Path(".coldbrew/cache"))
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--refit-seconds", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not (args.build or args.measure):
        parser.error("say --build, --measure or both")
    report: dict[str, Any] = {}
    if args.build:
        report["built"] = build(args)
        print(json.dumps(report["built"], indent=2), flush=True)
    if args.measure:
        report = stamped(measure(args))
        print(json.dumps(report, indent=2))
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
