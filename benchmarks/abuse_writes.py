"""The write-key attacks of issue 28, for ``abuse.py --writes``.

Two abusive clients, each with a valid write key of its own and in a process of its own, post
1,000-row batches of about 1 KB a row (a body just under the 1 MiB cap) back to back: the same
1,000 stored items again and again, 1,000 new items a batch, or 1,000 users with changed text.
A normal client (a process too) sends a by-id and a text recommendation in turn, each with new
words so that every one is encoded, one request every 100 ms. Phases alternate, quiet before each
attack, so a noisy machine weighs on both alike; each phase's load average is printed with it.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from coldbrew.bench.provenance import stamped
from coldbrew.bench.system import now, source

ABUSER_KEYS = ("abuse-writer-one-5c2e81", "abuse-writer-two-9b4a37")
WORDS = ["tent", "jacket", "boots", "lamp", "kettle", "novel", "keyboard", "camera", "scarf"]
USES = ["hiking", "camping", "cooking", "gaming", "reading", "travel", "winter", "office"]
FILLER = "sturdy light warm quiet simple handmade classic compact modern durable " * 12  # ~850 B
USERS = 100
Body = Callable[[int, int], bytes]


def big_items(prefix: str, n: int) -> list[dict[str, Any]]:
    """``n`` items of about 1 KB each, ids ``prefix0`` ... (1,000 of them: just under 1 MiB)."""
    rng = random.Random(prefix)
    return [
        {
            "id": f"{prefix}{k}",
            "title": f"{rng.choice(WORDS)} for {rng.choice(USES)} no. {k}",
            "description": f"A {rng.choice(USES)} {rng.choice(WORDS)}, {FILLER}",
            "attributes": {"category": rng.choice(USES)},
        }
        for k in range(n)
    ]


def attacks() -> dict[str, Body]:
    """The body an abuser posts, by the batch's number and the abuser's number: JSON bytes
    made once and stamped, so the abusers' own work takes little of the shared CPU."""
    stored = json.dumps({"items": big_items("i", 1000)}).encode()  # seeded items 0-999
    fresh = json.dumps({"items": big_items("@@-", 1000)}).encode()
    users = json.dumps(
        {"users": [{"id": f"w{k}", "text": f"I like @@. {FILLER}"} for k in range(1000)]}
    ).encode()

    def stamp(template: bytes) -> Body:
        return lambda n, who: template.replace(b"@@", f"a{who}-{n}".encode())

    return {
        "items re-posted unchanged": lambda n, who: stored,
        "new items each batch": stamp(fresh),
        "users changed each batch": stamp(users),  # the same 1,000 ids, new text
    }


def abuser(base: str, who: int, attack: str, seconds: float, out: Any, start: Any) -> None:
    """Post ``attack``'s batches back to back for ``seconds``; put the status codes on ``out``."""
    codes: collections.Counter[int] = collections.Counter()
    body = attacks()[attack]
    headers = {"X-API-Key": ABUSER_KEYS[who], "content-type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
        start.wait()
        end = time.monotonic() + seconds
        for n in range(1_000_000):
            if time.monotonic() > end:
                break
            path = "/users/batch" if attack.startswith("users") else "/items/batch"
            try:
                codes[client.post(path, content=body(n, who)).status_code] += 1
            except (httpx.HTTPError, OSError):
                codes[0] += 1
    out.put(("codes", dict(codes)))


def normal(base: str, key: str, seconds: float, seed: int, out: Any, start: Any) -> None:
    """A by-id and a new text recommendation in turn, one every 100 ms; their latencies."""
    rng = random.Random(seed)
    took: dict[str, list[float]] = {"by-id": [], "text": []}
    failed = 0
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
        start.wait()
        end = time.monotonic() + seconds
        for n in range(1_000_000):
            if time.monotonic() > end:
                break
            if n % 2:
                kind, body = "text", {"text": f"a {rng.choice(WORDS)} for {seed} {n}"}
            else:
                kind, body = "by-id", {"user_id": f"u{rng.randrange(USERS)}"}
            begin = time.perf_counter()
            try:
                ok = client.post("/recommend", json={**body, "explain": False}).status_code == 200
            except httpx.HTTPError:
                ok = False
            took[kind].append(time.perf_counter() - begin)
            failed += not ok
            time.sleep(max(0.0, 0.1 - took[kind][-1]))
    out.put(("latency", took, failed))


def phase(base: str, key: str, attack: str | None, seconds: float, seed: int) -> dict[str, Any]:
    """One phase: the normal client alone (``attack`` None) or beside two abusers."""
    out: Any = multiprocessing.Queue()
    sides = 1 if attack is None else 3
    start: Any = multiprocessing.Barrier(sides)
    procs = [multiprocessing.Process(target=normal, args=(base, key, seconds, seed, out, start))]
    if attack is not None:
        procs += [
            multiprocessing.Process(target=abuser, args=(base, who, attack, seconds, out, start))
            for who in range(2)
        ]
    load = [os.getloadavg()[0]]
    for proc in procs:
        proc.start()
    result: dict[str, Any] = {"codes": collections.Counter()}
    for _ in procs:
        message = out.get(timeout=seconds + 400)
        if message[0] == "codes":
            result["codes"].update(message[1])
        else:
            result["took"], result["failed"] = message[1], message[2]
    for proc in procs:
        proc.join(60)
    load.append(os.getloadavg()[0])
    result["load"] = load
    return result


def seed(base: str, key: str, n_items: int) -> None:
    """The catalogue (the attacked 1,000 items among it) and users known by one like each."""
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=300) as api:
        items = big_items("i", n_items)
        for begin in range(0, len(items), 500):
            batch = {"items": items[begin : begin + 500]}
            api.post("/items/batch", json=batch).raise_for_status()
        likes = [
            {"user_id": f"u{u}", "item_id": f"i{(u * 7) % n_items}", "event": "like"}
            for u in range(USERS)
        ]
        api.post("/interactions/batch", json={"interactions": likes}).raise_for_status()


def p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q)) if values else float("nan")


def quiet_of(phases: list[tuple[str, dict[str, Any]]]) -> dict[str, list[float]]:
    """Every quiet phase's latencies together, by kind."""
    quiet: dict[str, list[float]] = {"by-id": [], "text": []}
    for name, result in phases:
        if name == "quiet":
            for kind in quiet:
                quiet[kind] += result["took"][kind]
    return quiet


def summary(phases: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The tables' figures as data: per phase the normal client's p50/p99 by kind and the p99
    ratios to all quiet phases', and the worst ratio of the attack phases by kind."""
    quiet = quiet_of(phases)
    rows = []
    for name, result in phases:
        took = result["took"]
        rows.append(
            {
                "phase": name,
                "load_average": result["load"],
                "failed": result["failed"],
                "codes": {str(c): n for c, n in result["codes"].items()},
                **{
                    kind: {
                        "n": len(took[kind]),
                        "p50_ms": p(took[kind], 50),
                        "p99_ms": p(took[kind], 99),
                        "p99_ratio": p(took[kind], 99) / p(quiet[kind], 99),
                    }
                    for kind in ("by-id", "text")
                },
            }
        )
    attacked = [row for row in rows if row["phase"] != "quiet"]
    worst = {kind: max(row[kind]["p99_ratio"] for row in attacked) for kind in ("by-id", "text")}
    return {"phases": rows, "worst_p99_ratio": worst}


def report(database: str, figures: dict[str, Any]) -> None:
    """The table of :func:`summary`'s ``figures`` for one database."""
    print(f"\n{database}: normal client, p50 / p99 ms (ratio of p99 to all quiet phases')")
    print(
        "| phase | load avg | by-id n | by-id p50 / p99 | text n | text p50 / p99 | "
        "p99 ratio by-id / text | failed | abusers' status codes |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in figures["phases"]:
        by_id, text, load = row["by-id"], row["text"], row["load_average"]
        codes = sorted(row["codes"].items(), key=lambda kv: int(kv[0]))
        answers = ", ".join(f"{'cut' if c == '0' else c}: {n}" for c, n in codes)
        print(
            f"| {row['phase']} | {load[0]:.1f}–{load[1]:.1f} "
            f"| {by_id['n']} | {by_id['p50_ms']:.1f} / {by_id['p99_ms']:.1f} "
            f"| {text['n']} | {text['p50_ms']:.1f} / {text['p99_ms']:.1f} "
            f"| {by_id['p99_ratio']:.2f}x / {text['p99_ratio']:.2f}x | {row['failed']} "
            f"| {answers or '-'} |"
        )


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """A SQLite file, or a fresh PostgreSQL from pgserver (stopped afterwards)."""
    if kind == "sqlite":
        yield str(tmp / "abuse.sqlite")
        return
    import pgserver

    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def run_writes(args: argparse.Namespace, start: Callable[..., Any], key: str) -> None:
    """Every attack on every database asked for, quiet phases between; the tables."""
    env = {
        "COLDBREW_API_KEYS": ",".join([key, *ABUSER_KEYS]),
        "COLDBREW_REFIT_EVERY": "0",  # no refit in the background: it is measured elsewhere
        "COLDBREW_REFIT_MINUTES": "0",
    }
    base = f"http://127.0.0.1:{args.port}"
    record: dict[str, Any] = {
        "date": now(),
        "command": "python " + " ".join(sys.argv),
        "source": source(),
        "seconds": args.seconds,
        "attacks": args.attack or list(attacks()),
        # the service's settings given through this process's environment (COLDBREW_WRITE_SHARE...)
        "environment": {k: v for k, v in os.environ.items() if k.startswith("COLDBREW_")},
        "items": args.items,
        "databases": {},
    }
    for kind in args.db:
        tmp = tempfile.TemporaryDirectory(prefix="coldbrew-abuse-")
        with tmp, database(kind, Path(tmp.name)) as url:
            server = start(url, args.port, args.encoder, env)
            try:
                seed(base, key, args.items)
                phases = alternate(base, key, args.seconds, args.attack)
            finally:
                server.terminate()
                server.wait(timeout=60)
        record["databases"][kind] = figures = summary(phases)
        report(kind, figures)
    if args.out:
        Path(args.out).write_text(json.dumps(stamped(record), indent=1) + "\n")
        print(f"\nwrote {args.out}")


def alternate(
    base: str, key: str, seconds: float, only: list[str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """A warm-up, then each attack (those named in ``only``, else all) after a quiet phase of
    its own."""
    phase(base, key, None, 10, seed=0)
    phases = []
    for number, attack in enumerate(attacks()):
        if only and attack not in only:
            continue
        phases.append(("quiet", phase(base, key, None, seconds, number)))
        phases.append((attack, phase(base, key, attack, seconds, number)))
    return phases
