"""Replay the attacks of issue 13 against a live ``coldbrew serve`` on loopback.

A normal client sends anonymous text queries, one every 100 ms as a person would (under its
per-client limit), first alone (quiet), then while two abusive clients attack from their own
loopback addresses (127.0.0.2 and 127.0.0.3, so each has its own per-client budget, as distinct
hosts would). The abusive clients take turns through the issue's attacks as fast as the server
answers: a 0.96 MB attribute list with k=100, a flood of anonymous text queries, a stored user's
profile without a key, wrong write keys, NaN and NUL bodies. Two more addresses open half-open
connections that never finish their headers or their body; what the server did with them is
read at the end. The table gives the status codes of each attack, the normal client's p50/p99
quiet and under attack, and the server's memory before and after.

With ``--writes``, the write-key attacks of issue 28 instead (:mod:`abuse_writes`): two clients
with valid write keys post 1,000-row batches back to back, on SQLite and/or PostgreSQL
(pgserver), while a normal client's by-id and text p99 are measured in quiet phases between.

    OPENBLAS_NUM_THREADS=1 python benchmarks/abuse.py --seconds 30
    OPENBLAS_NUM_THREADS=1 python benchmarks/abuse.py --writes --db sqlite --db postgres
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from abuse_writes import attacks as attacks_of_writes
from abuse_writes import run_writes
from liveserver import start_server

KEY = "abuse-bench-key-7d1f"
WORDS = ["tent", "jacket", "boots", "lamp", "kettle", "novel", "keyboard", "camera", "scarf"]
USES = ["hiking", "camping", "cooking", "gaming", "reading", "travel", "winter", "office"]
Attack = Callable[[httpx.Client], httpx.Response]


def catalogue(n: int) -> list[dict[str, Any]]:
    rng = random.Random(0)
    return [
        {
            "id": f"i{n}",
            "title": f"{rng.choice(WORDS)} for {rng.choice(USES)} no. {n}",
            "description": f"A {rng.choice(USES)} {rng.choice(WORDS)} made for {rng.choice(USES)}",
            "attributes": {"category": rng.choice(USES)},
        }
        for n in range(n)
    ]


def start(
    db: str, port: int, encoder: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "COLDBREW_API_KEYS": KEY, "OPENBLAS_NUM_THREADS": "1", **(env or {})}
    command = [sys.executable, "-m", "coldbrew", "serve", "--db", db, "--port", str(port)]
    server, _ = start_server([*command, "--encoder", encoder], env, f"http://127.0.0.1:{port}")
    return server


def client_from(base: str, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x.y.z is loopback)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base, transport=transport, timeout=30)


def attacks() -> dict[str, Attack]:
    huge = {"text": "tent", "k": 100, "attributes": {"tags": ["x" * 90] * 10_000}}  # 0.96 MB
    huge_body = json.dumps(huge).encode()
    texts = itertools.count()
    json_headers = {"content-type": "application/json"}
    return {
        "0.96 MB attribute list, k=100": lambda c: c.post(
            "/recommend", content=huge_body, headers=json_headers
        ),
        "anonymous text flood": lambda c: c.post(
            "/recommend", json={"text": f"{WORDS[next(texts) % 9]} gear {next(texts)}"}
        ),
        "stored user without a key": lambda c: c.post("/recommend", json={"user_id": "alice"}),
        "wrong write key": lambda c: c.post(
            "/items", json={"id": "x", "title": "x"}, headers={"X-API-Key": "guess"}
        ),
        "NaN timestamp": lambda c: c.post(
            "/interactions",
            content=b'{"user_id": "a", "item_id": "i1", "timestamp": NaN}',
            headers={**json_headers, "X-API-Key": KEY},
        ),
        "NUL in text": lambda c: c.post(
            "/recommend", content=b'{"text": "a\\u0000b"}', headers=json_headers
        ),
    }


def abuse(base: str, address: str, seconds: float, out: Any, start: Any) -> None:
    """Take turns through the attacks for ``seconds``; put the status codes on ``out``.

    Runs in a process of its own, as another host would: threads here would take the normal
    client's GIL and show up as its latency."""
    codes: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    with client_from(base, address) as client:
        menu = attacks()
        names = list(menu)
        start.wait()  # every side is ready: the attack and the measurement begin together
        end = time.monotonic() + seconds
        for turn in itertools.count():
            if time.monotonic() > end:
                break
            name = names[turn % len(names)]
            try:
                codes[name][menu[name](client).status_code] += 1
            except (httpx.HTTPError, OSError):
                codes[name][0] += 1  # refused or cut: no status
    out.put({name: dict(counter) for name, counter in codes.items()})


HALF_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
HALF_BODY = b"POST /recommend HTTP/1.1\r\nHost: x\r\ncontent-length: 100\r\n\r\n{"


def half_open(base: str, address: str, n: int, opening: bytes) -> list[socket.socket]:
    """Open ``n`` connections that send ``opening`` and then nothing."""
    host, port = base.removeprefix("http://").split(":")
    socks = []
    for _ in range(n):
        sock = socket.create_connection((host, int(port)), source_address=(address, 0))
        sock.sendall(opening)
        socks.append(sock)
    return socks


def outcome(sock: socket.socket) -> str:
    """What the server did with a half-open connection: its status, closed, or still held."""
    sock.setblocking(False)
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return "held"
    except OSError:
        return "closed"
    return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "closed"


def normal_client(base: str, n: int, seed: int, interval: float = 0.1) -> list[float]:
    """``n`` anonymous text queries, one every ``interval`` s (a person's pace, under the
    per-client limit); the latency of each."""
    rng = random.Random(seed)
    took = []
    with client_from(base, "127.0.0.1") as client:
        for _ in range(n):
            body = {"text": f"a {rng.choice(WORDS)} for {rng.choice(USES)}", "k": 10}
            start = time.perf_counter()
            response = client.post("/recommend", json=body)
            took.append(time.perf_counter() - start)
            response.raise_for_status()
            time.sleep(max(0.0, interval - took[-1]))
    return took


def pct(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def run(args: argparse.Namespace, base: str, server: psutil.Process) -> None:
    with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=120) as api:
        items = catalogue(args.items)
        for start in range(0, len(items), 500):
            api.post("/items/batch", json={"items": items[start : start + 500]}).raise_for_status()
        alice = {"id": "alice", "text": "diabetes, pregnant", "attributes": {"religion": "x"}}
        api.post("/users", json=alice).raise_for_status()
    normal_client(base, 20, seed=1)  # warm-up
    rss_before = server.memory_info().rss / 2**20
    quiet = normal_client(base, args.requests, seed=2)
    codes: dict[str, collections.Counter[Any]] = collections.defaultdict(collections.Counter)
    out: Any = multiprocessing.Queue()
    start: Any = multiprocessing.Barrier(3)
    abusers = [
        multiprocessing.Process(target=abuse, args=(base, address, args.seconds, out, start))
        for address in ("127.0.0.2", "127.0.0.3")
    ]
    slow = {
        "half-open: headers never finish": half_open(
            base, "127.0.0.4", args.half_open, HALF_HEADERS
        ),
        "half-open: body never finishes": half_open(base, "127.0.0.5", args.half_open, HALF_BODY),
    }
    for process in abusers:
        process.start()
    start.wait()
    attack_start = time.monotonic()
    loud: list[float] = []
    while time.monotonic() - attack_start < args.seconds:
        loud += normal_client(base, 25, seed=len(loud))
    for name, socks in slow.items():
        codes[name].update(outcome(sock) for sock in socks)
        for sock in socks:
            sock.close()
    for _ in abusers:
        for name, counts in out.get(timeout=120).items():
            codes[name].update(counts)
    for process in abusers:
        process.join(60)
    rss_after = server.memory_info().rss / 2**20
    report(args, codes, quiet, loud, rss_before, rss_after)


def report(
    args: argparse.Namespace,
    codes: dict[str, collections.Counter[Any]],
    quiet: list[float],
    loud: list[float],
    rss_before: float,
    rss_after: float,
) -> None:
    print(f"\n| attack (2 clients, {args.seconds:g} s) | requests | status codes |")
    print("|---|---:|---|")
    for name, counter in codes.items():
        shown = ", ".join(f"{code or 'cut'}: {n}" for code, n in sorted(counter.items(), key=str))
        print(f"| {name} | {sum(counter.values())} | {shown} |")
    (q50, q99), (l50, l99) = pct(quiet), pct(loud)
    print("\n| normal client, anonymous text query | n | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    print(f"| quiet | {len(quiet)} | {q50:.1f} | {q99:.1f} |")
    print(f"| under attack | {len(loud)} | {l50:.1f} | {l99:.1f} |")
    print(f"| ratio | | {l50 / q50:.2f}x | {l99 / q99:.2f}x |")
    print(f"server memory: {rss_before:.0f} MB before the attack, {rss_after:.0f} MB after")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200, help="quiet normal queries")
    parser.add_argument("--seconds", type=float, default=30.0, help="attack duration")
    parser.add_argument("--half-open", type=int, default=200, help="of each kind")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument(
        "--writes", action="store_true", help="the write-key attacks of issue 28 instead"
    )
    parser.add_argument(
        "--db", action="append", choices=["sqlite", "postgres"], help="--writes: repeatable"
    )
    parser.add_argument("--out", help="--writes: also write the figures to this JSON file")
    parser.add_argument(
        "--attack",
        action="append",
        choices=list(attacks_of_writes()),
        help="--writes: only this attack (repeatable; default: every one)",
    )
    args = parser.parse_args()
    if args.writes:
        args.db = args.db or ["sqlite"]
        run_writes(args, start, KEY)
        print(f"\ncommand: {' '.join(sys.argv)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="coldbrew-abuse-") as tmp:
        server = start(str(Path(tmp) / "abuse.sqlite"), args.port, args.encoder)
        try:
            run(args, f"http://127.0.0.1:{args.port}", psutil.Process(server.pid))
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"\ncommand: {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
