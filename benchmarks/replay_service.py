"""The served side of the replay benchmark: servers, the shared history database, refits, and the
evaluation loop (for ``replay.py``).

The catalogue and the warm-up history are sent once, over HTTP, to a zero-shot server with
refits off; every variant then starts its own server over a copy of that database. While a refit
runs during the evaluation, the stream is replayed at its real pace (an event is sent only once
as much wall time has passed since the refit started as stream time since then), so a refit sees
the events it would see live; between refits it runs as fast as the service answers. While the
client waits it sends probe recommendations (timed, not scored) to measure latency under a refit.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from liveserver import KEY, free_port, start_server, stop_server, timed, tree_rss_mb
from replay_stream import Stream

REPO = Path(__file__).resolve().parents[1]
USER_BATCH = 1000
ITEM_BATCH = 200
DB_NAME = "replay.sqlite"
PROBE_EVERY_S = 0.05


@dataclass(frozen=True)
class Variant:
    name: str
    model: str  # "zeroshot" or "hybrid"
    refit_every: int = 0


# ---- servers ----------------------------------------------------------------------------------
def server_options() -> set[str]:
    """The flags this checkout's ``coldbrew serve`` accepts (read from its ``--help``)."""
    out = subprocess.run(
        [sys.executable, "-m", "coldbrew", "serve", "--help"],
        capture_output=True,
        text=True,
        env=checkout_env(),
        check=True,
    )
    return set(re.findall(r"--[a-z][a-z-]+", out.stdout))


def checkout_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OPENBLAS_NUM_THREADS": "1"}


def variant_env(variant: Variant) -> dict[str, str]:
    """The variant's settings as environment: refits by count only (the timer is off), and no
    request-rate limits (the replay is one trusted backend client, faster than 200 req/s)."""
    return {
        **checkout_env(),
        "COLDBREW_API_KEYS": KEY,
        "COLDBREW_KEY_RATE_LIMIT": "1000000/second",
        "COLDBREW_RATE_LIMIT": "1000000/second",
        "COLDBREW_MODEL": variant.model,
        "COLDBREW_REFIT_EVERY": str(variant.refit_every),
        "COLDBREW_REFIT_MINUTES": "0",
    }


def server_command(
    variant: Variant, options: set[str], db: Path, port: int, encoder: str
) -> list[str]:
    command = [sys.executable, "-m", "coldbrew", "serve", "--db", str(db), "--port", str(port)]
    command += ["--encoder", encoder]
    if "--model" in options:
        command += ["--model", variant.model]
    if "--refit-every" in options:
        command += ["--refit-every", str(variant.refit_every)]
    if "--refit-minutes" in options:
        command += ["--refit-minutes", "0"]
    return command


@contextlib.contextmanager
def running_server(
    variant: Variant, db: Path, options: set[str], encoder: str
) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """A ``coldbrew serve`` for ``variant`` over ``db`` on a free port, stopped on exit."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = server_command(variant, options, db, port, encoder)
    print(f"[{variant.name}] {' '.join(command[1:])}", flush=True)
    server, ready_s = start_server(command, variant_env(variant), base)
    try:
        yield server, base, ready_s
    finally:
        stop_server(server)


# ---- the shared history database --------------------------------------------------------------
def batches(n: int, size: int, start: int = 0) -> Iterator[range]:
    for first in range(start, n, size):
        yield range(first, min(n, first + size))


def interaction(stream: Stream, n: int) -> dict[str, Any]:
    user, item = stream.users[n], stream.items[n]
    return {
        "id": f"{user}:{item}",
        "user_id": user,
        "item_id": item,
        "event": "like",
        "timestamp": stream.times[n],
        **with_context(event_context(stream, n)),
    }


def event_context(stream: Stream, n: int) -> dict[str, Any] | None:
    """Event ``n``'s context when the stream carries one: the event is sent, and its user
    asked just before it, in that context."""
    return stream.contexts[n] if stream.contexts else None


def with_context(context: dict[str, Any] | None) -> dict[str, Any]:
    """``{"context": context}`` for a request body, or nothing without one."""
    return {"context": context} if context else {}


def user_body(stream: Stream, user: str) -> dict[str, Any]:
    return {"id": user, "attributes": stream.attributes.get(user, {})}


def send_catalogue(client: httpx.Client, stream: Stream) -> None:
    for part in batches(len(stream.catalogue), ITEM_BATCH):
        timed(client, "POST", "/items/batch", {"items": [stream.catalogue[j] for j in part]})


def send_warmup(client: httpx.Client, stream: Stream, batch: int) -> None:
    """The warm-up events in batches, each batch's new users first."""
    known: set[str] = set()
    for part in batches(stream.n_warm, batch):
        new = list(dict.fromkeys(stream.users[n] for n in part if stream.users[n] not in known))
        for chunk in batches(len(new), USER_BATCH):
            users = [user_body(stream, new[j]) for j in chunk]
            timed(client, "POST", "/users/batch", {"users": users})
        known.update(new)
        events = [interaction(stream, n) for n in part]
        timed(client, "POST", "/interactions/batch", {"interactions": events})


def history_database(
    stream: Stream, options: set[str], args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    """Catalogue and warm-up history, over HTTP, into the database in ``folder`` that every
    variant copies. The catalogue comes from ``--catalogue-cache`` when it was loaded there
    before from the same items, encoder and checkout (``src/`` tree)."""
    cache = catalogue_cache(stream, args)
    figures: dict[str, Any] = {}
    if cache is not None and (cache / "catalogue.json").exists():
        copy_database(cache, folder)
        figures = {**json.loads((cache / "catalogue.json").read_text()), "reused_from": str(cache)}
    variant = Variant("history", "zeroshot")
    with running_server(variant, folder / DB_NAME, options, args.encoder) as (_, base, ready_s):
        client = httpx.Client(base_url=base, timeout=600)
        try:
            if not figures:
                start = time.perf_counter()
                send_catalogue(client, stream)
                figures = {"catalogue_s": round(time.perf_counter() - start, 1)}
            start = time.perf_counter()
            send_warmup(client, stream, args.batch)
            figures["warmup_s"] = round(time.perf_counter() - start, 1)
        finally:
            client.close()
    if cache is not None and "reused_from" not in figures:
        keep_catalogue(folder, cache, figures["catalogue_s"])
    print(f"[history] {figures}", flush=True)
    return {"startup_s": round(ready_s, 1), **figures}


def catalogue_cache(stream: Stream, args: argparse.Namespace) -> Path | None:
    if args.catalogue_cache is None:
        return None
    blob = json.dumps([stream.catalogue, args.encoder, source_tree()], sort_keys=True)
    return Path(args.catalogue_cache) / hashlib.sha256(blob.encode()).hexdigest()[:16]


def keep_catalogue(folder: Path, cache: Path, seconds: float) -> None:
    """Keep the catalogue-only database: the history database minus its users and events."""
    import sqlite3

    cache.mkdir(parents=True, exist_ok=True)
    copy_database(folder, cache)
    with contextlib.closing(sqlite3.connect(cache / DB_NAME)) as db, db:
        db.execute("DELETE FROM interactions")
        db.execute("DELETE FROM users")
    (cache / "catalogue.json").write_text(json.dumps({"catalogue_s": seconds}))


def source_tree() -> str:
    """The git tree id of this checkout's ``src/``; with uncommitted changes, a key never reused."""
    tree = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD:src"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "src"], capture_output=True, text=True
    ).stdout.strip()
    return f"{tree}-dirty-{time.time()}" if dirty else tree


def copy_database(source: Path, target: Path) -> None:
    """The SQLite file and its journal files; no model versions or graphs kept beside them."""
    for file in source.iterdir():
        if file.is_file() and file.name.startswith(DB_NAME) and ".hnsw" not in file.name:
            shutil.copy2(file, target / file.name)


# ---- refits -----------------------------------------------------------------------------------
@dataclass
class RefitLog:
    """Refit starts and finishes as the server reports them (its wall clock: ``time.time()``)."""

    starts: set[float] = field(default_factory=set)
    finished: dict[float, dict[str, Any]] = field(default_factory=dict)
    states: int = 0

    def observe(self, state: dict[str, Any]) -> None:
        self.states += 1
        if state.get("running") and state.get("running_since"):
            self.starts.add(float(state["running_since"]))
        last = state.get("last") or {}
        if last.get("finished"):
            self.finished[float(last["finished"])] = last

    def spans(self) -> list[tuple[float, float]]:
        """(start, end) of each refit seen; one still running ends now."""
        ends = sorted(self.finished)
        out = []
        for start in sorted(self.starts):
            end = next((e for e in ends if e > start), time.time())
            out.append((start, end))
        return out


class Monitor(threading.Thread):
    """Samples the server tree's memory and its refit state every ``every`` seconds."""

    def __init__(self, pid: int, base: str, log: RefitLog, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.base, self.log, self.every = pid, base, log, every
        self.peak_rss_mb = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.halt.is_set():
                self.peak_rss_mb = max(self.peak_rss_mb, tree_rss_mb(self.pid))
                with contextlib.suppress(httpx.HTTPError):
                    response = client.get("/admin/refit", headers={"X-API-Key": KEY})
                    if response.status_code == 200:
                        self.log.observe(response.json())
                self.halt.wait(self.every)


def refit_state(client: httpx.Client) -> dict[str, Any]:
    return dict(timed(client, "GET", "/admin/refit")[1])


def first_refit(client: httpx.Client, log: RefitLog, timeout_s: float) -> dict[str, Any]:
    """A refit on the warm-up history, waited for; its wall time and who started it.

    A service that starts with interactions but no model starts that refit itself; then it is
    the one waited for (a second one would fit the same data again). Otherwise the client asks
    for it (``POST /admin/refit``)."""
    deadline = time.perf_counter() + timeout_s
    start = time.perf_counter()
    state = refit_state(client)
    log.observe(state)
    how = "service, at start-up"
    if not state.get("running"):
        how = str(timed(client, "POST", "/admin/refit")[1].get("status"))
        if how not in ("started", "queued"):
            raise RuntimeError(f"POST /admin/refit did not start a refit: {how!r}")
        how = f"POST /admin/refit ({how})"
    wanted = state.get("refits", 0) + (2 if how.endswith("(queued)") else 1)
    while not (state.get("refits", 0) >= wanted and not state.get("running")):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the first refit did not finish within {timeout_s:.0f}s")
        time.sleep(0.5)
        state = refit_state(client)
        log.observe(state)
    return {"started_by": how, "wall_s": round(time.perf_counter() - start, 2), "state": state}


# ---- evaluation -------------------------------------------------------------------------------
@dataclass
class Served:
    """What one served variant recorded (times are ``time.time()``; durations in seconds)."""

    ranks: list[int] = field(default_factory=list)
    recommend: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)
    probes: list[tuple[float, float]] = field(default_factory=list)
    interaction_s: list[float] = field(default_factory=list)
    user_s: list[float] = field(default_factory=list)
    versions: list[Any] = field(default_factory=list)
    kinds: list[Any] = field(default_factory=list)
    phases: dict[str, Any] = field(default_factory=dict)
    first_refit: dict[str, Any] = field(default_factory=dict)
    paced_events: int = 0


def ask(
    client: httpx.Client, user: str, k: int, context: dict[str, Any] | None = None
) -> tuple[float, float, dict[str, Any]]:
    """``POST /recommend`` for a known user, in ``context`` if any; (wall start, seconds,
    body)."""
    start = time.time()
    query = {"user_id": user, "k": k, "exclude_seen": True, "explain": False}
    took, body = timed(client, "POST", "/recommend", query | with_context(context))
    return start, took, body


class Pacer:
    """Holds the stream back to its real pace while a refit runs, probing latency meanwhile."""

    def __init__(self, client: httpx.Client, log: RefitLog, served: Served, k: int) -> None:
        self.client, self.log, self.served, self.k = client, log, served, k
        self.anchor: tuple[float, float] | None = None  # (refit start, stream time then)
        self.rng = random.Random(0)

    def after_event(self, stream_time: float, polls: bool) -> None:
        """Note whether a refit runs now (right after an event was sent)."""
        if not polls:
            return
        state = refit_state(self.client)
        self.log.observe(state)
        since = state.get("running_since") if state.get("running") else None
        if since is None:
            self.anchor = None
        elif self.anchor is None or self.anchor[0] != since:
            self.anchor = (float(since), stream_time)

    def before_event(self, stream_time: float, users: list[str]) -> None:
        """Wait until the event is due in real time, or the refit has ended."""
        if self.anchor is None:
            return
        self.served.paced_events += 1
        since, anchored = self.anchor
        next_poll = 0.0
        while time.time() - since < stream_time - anchored:
            start, took, _ = ask(self.client, self.rng.choice(users), self.k)
            self.served.probes.append((start, took))
            if time.time() >= next_poll:
                state = refit_state(self.client)
                self.log.observe(state)
                if not state.get("running") or state.get("running_since") != since:
                    self.anchor = None
                    return
                next_poll = time.time() + 0.25
            time.sleep(PROBE_EVERY_S)


def evaluate(
    client: httpx.Client, stream: Stream, served: Served, pacer: Pacer | None, k: int
) -> None:
    """Before each evaluation event: the user's top ``k``; then the event itself."""
    known = set(stream.users[: stream.n_warm])
    recent: list[str] = list(dict.fromkeys(reversed(stream.users[: stream.n_warm])))[:50]
    for n in stream.evaluation():
        user, item = stream.users[n], stream.items[n]
        if pacer is not None:
            pacer.before_event(stream.times[n], recent)
        if user not in known:
            served.user_s.append(timed(client, "POST", "/users", user_body(stream, user))[0])
            known.add(user)
        start, took, body = ask(client, user, k, event_context(stream, n))
        served.recommend.append((start, took))
        ids = [r["item_id"] for r in body["items"]]
        served.ranks.append(ids.index(item) + 1 if item in ids else 0)
        served.versions.append(body.get("model_version"))
        served.kinds.append(body.get("model_kind"))
        served.interaction_s.append(
            timed(client, "POST", "/interactions", interaction(stream, n))[0]
        )
        recent = [user, *(u for u in recent if u != user)][:50]
        if pacer is not None:
            pacer.after_event(stream.times[n], polls=True)


def run_variant(
    variant: Variant, stream: Stream, options: set[str], args: argparse.Namespace, history: Path
) -> tuple[Served, RefitLog, float, dict[str, Any]]:
    """One variant on a fresh server over a fresh copy of the history database."""
    log = RefitLog()
    with tempfile.TemporaryDirectory(prefix="coldbrew-replay-") as tmp:
        copy_database(history, Path(tmp))
        with running_server(variant, Path(tmp) / DB_NAME, options, args.encoder) as running:
            server, base, ready = running
            monitor = Monitor(server.pid, base, log)
            monitor.start()
            served = Served(phases={"startup_s": round(ready, 1)})
            try:
                with httpx.Client(base_url=base, timeout=600) as client:
                    drive(client, variant, stream, served, log, args)
                    final = server_figures(client, log)
            finally:
                monitor.halt.set()
                monitor.join(timeout=10)
    return served, log, monitor.peak_rss_mb, final


def refits_offered(client: httpx.Client) -> bool:
    return client.get("/admin/refit", headers={"X-API-Key": KEY}).status_code == 200


def drive(
    client: httpx.Client,
    variant: Variant,
    stream: Stream,
    served: Served,
    log: RefitLog,
    args: argparse.Namespace,
) -> None:
    pacer = None
    if variant.model == "hybrid":
        if not refits_offered(client):
            raise NotOffered("this checkout's service has no /admin/refit")
        served.first_refit = first_refit(client, log, args.refit_timeout)
        print(f"[{variant.name}] first refit {served.first_refit['wall_s']}s", flush=True)
        pacer = Pacer(client, log, served, args.k)
    start = time.perf_counter()
    evaluate(client, stream, served, pacer, args.k)
    served.phases["evaluation_s"] = round(time.perf_counter() - start, 1)
    print(f"[{variant.name}] evaluation {served.phases['evaluation_s']}s", flush=True)


class NotOffered(RuntimeError):
    """The service lacks what a variant needs (an older checkout)."""


def server_figures(client: httpx.Client, log: RefitLog) -> dict[str, Any]:
    """The server's own refit state and the refit and model lines of ``/metrics``, at the end."""
    out: dict[str, Any] = {}
    response = client.get("/admin/refit", headers={"X-API-Key": KEY})
    if response.status_code == 200:
        out["refit_state"] = response.json()
        log.observe(out["refit_state"])
    text = client.get("/metrics").text
    out["metrics"] = [
        line for line in text.splitlines() if re.match(r"coldbrew_(refit|model_info)", line)
    ]
    return out
