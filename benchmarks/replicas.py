"""Replicas over one PostgreSQL database: lag, consistency, a replica killed, throughput.

Starts a real PostgreSQL (pgserver, default durability: fsync on), seeds it through one
``coldbrew serve`` replica, has that replica (the trainer) fit the hybrid, then starts more
``coldbrew serve`` processes on the same database, each with its own models directory (as on
its own machine), and measures:

- **lag**: a writer client on one replica writes (item upserts, feedback, item deletes, in
  turn); after each acknowledgement, readers poll the other replicas until the write is visible
  there; the seconds from the acknowledgement to visibility, p50/p99 per replica count, while
  other clients send recommend-by-user-id requests to every replica;
- **consistency**: at the end, every item written (and not deleted) must be served by every
  replica, and every deleted one by none (counted; must be 0);
- **kill -9**: with three replicas, the trainer is killed mid-load; the clients of the two
  survivors count their errors (must be 0), the writes go on, and a survivor takes over training;
- **throughput**: recommend by user id, closed loop, spread over 1, 2 and 3 replicas (all on
  this machine's cores, with the clients).

    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/replicas.py
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from liveserver import KEY, free_port, percentiles, save_report, start_server, stop_server
from load import THINGS as WORDS
from load import USES

ROOT = Path(__file__).resolve().parents[1]
HEADERS = {"X-API-Key": KEY}


class Fleet:
    """``coldbrew serve`` replicas over one database, started and stopped by this script."""

    def __init__(self, db_url: str, workdir: Path, encoder: str) -> None:
        self.db_url, self.workdir, self.encoder = db_url, workdir, encoder
        self.procs: list[subprocess.Popen[bytes] | None] = []
        self.urls: list[str] = []
        self.ready_s: list[float] = []

    def start(self) -> str:
        n = len(self.procs)
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "OPENBLAS_NUM_THREADS": "1",
            "COLDBREW_API_KEYS": KEY,
            "COLDBREW_KEY_RATE_LIMIT": "1000000/second",
            "COLDBREW_RATE_LIMIT": "1000000/second",
            "COLDBREW_MODELS_DIR": str(self.workdir / f"models-{n}"),
            "COLDBREW_REFIT_EVERY": "0",
            "COLDBREW_REFIT_MINUTES": "0",
        }
        command = [sys.executable, "-m", "coldbrew", "serve", "--db", self.db_url]
        command += ["--encoder", self.encoder, "--port", str(port)]
        base = f"http://127.0.0.1:{port}"
        proc, ready = start_server(command, env, base)
        self.procs.append(proc)
        self.urls.append(base)
        self.ready_s.append(round(ready, 2))
        return base

    def live(self) -> list[str]:
        return [u for u, p in zip(self.urls, self.procs) if p is not None]

    def kill(self, n: int) -> None:
        proc = self.procs[n]
        if proc is not None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            self.procs[n] = None

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None:
                stop_server(proc, timeout_s=30)


# ---- seeding ---------------------------------------------------------------------------------
def seed(base: str, n_items: int, n_users: int, n_events: int) -> None:
    rng = random.Random(0)
    items = [
        {
            "id": f"i{n}",
            "title": f"{rng.choice(USES)} {rng.choice(WORDS)} no. {n}",
            "description": f"a {rng.choice(WORDS)} for {rng.choice(USES)}",
        }
        for n in range(n_items)
    ]
    users = [{"id": f"u{n}", "text": f"I like {rng.choice(USES)}"} for n in range(n_users)]
    events = [
        {
            "id": f"e{n}",
            "user_id": f"u{rng.randrange(n_users)}",
            "item_id": f"i{rng.randrange(n_items)}",
            "event": "like",
            "timestamp": float(n),
        }
        for n in range(n_events)
    ]
    with httpx.Client(base_url=base, headers=HEADERS, timeout=300) as client:
        for path, key, rows in (
            ("/items/batch", "items", items),
            ("/users/batch", "users", users),
            ("/interactions/batch", "interactions", events),
        ):
            for start in range(0, len(rows), 500):
                client.post(path, json={key: rows[start : start + 500]}).raise_for_status()


def refit(base: str, timeout_s: float = 600) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers=HEADERS, timeout=60) as client:
        client.post("/admin/refit").raise_for_status()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status: dict[str, Any] = client.get("/admin/refit").json()
            if not status["running"] and status["refits"]:
                return status
            time.sleep(0.5)
    raise RuntimeError("the refit did not finish")


def wait_version(urls: list[str], version: str, timeout_s: float = 30) -> float:
    start = time.monotonic()
    for url in urls:
        with httpx.Client(base_url=url, headers=HEADERS, timeout=30) as client:
            while client.get("/admin/refit").json()["version"] != version:
                if time.monotonic() - start > timeout_s:
                    raise RuntimeError(f"{url} does not serve {version}")
                time.sleep(0.02)
    return time.monotonic() - start


# ---- readers: background load and error counting ---------------------------------------------
class Readers:
    """Closed-loop recommend-by-user-id clients, each on one replica, counting errors."""

    def __init__(self, urls: list[str], per_replica: int, n_users: int) -> None:
        self.stop = threading.Event()
        self.ok = 0
        self.errors: list[str] = []
        self.seconds: list[float] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._loop, args=(url, n_users, k), daemon=True)
            for url in urls
            for k in range(per_replica)
        ]

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _loop(self, url: str, n_users: int, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, headers=HEADERS, timeout=30) as client:
            while not self.stop.is_set():
                body = {"user_id": f"u{rng.randrange(n_users)}", "k": 10, "explain": False}
                start = time.perf_counter()
                try:
                    response = client.post("/recommend", json=body)
                    failed = None if response.status_code == 200 else str(response.status_code)
                except httpx.HTTPError as exc:
                    failed = type(exc).__name__
                took = time.perf_counter() - start
                with self.lock:
                    if failed:
                        self.errors.append(f"{url} {failed}")
                    else:
                        self.ok += 1
                        self.seconds.append(took)


# ---- the writer and the lag ------------------------------------------------------------------
def visible(client: httpx.Client, write: dict[str, Any]) -> bool:
    if write["kind"] == "upsert":
        return client.get(f"/items/{write['id']}").status_code == 200
    if write["kind"] == "delete":
        return client.get(f"/items/{write['id']}").status_code == 404
    response = client.get(f"/users/{write['user']}")
    return response.status_code == 200 and response.json()["interactions"] >= write["count"]


def write_and_watch(
    writer_url: str,
    watched: list[str],
    seconds: float,
    tag: str,
    n_users: int,
    errors: list[str],
    during: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Write in turn (upsert, feedback, delete of an earlier upsert) for ``seconds``; after each
    acknowledgement, poll every watched replica until it is visible there (lag per replica)."""
    lags: list[float] = []
    written: list[str] = []
    deleted: list[str] = []
    counts: dict[str, int] = {}
    rng = random.Random(tag)
    clients = [httpx.Client(base_url=u, headers=HEADERS, timeout=30) for u in watched]
    start = time.monotonic()
    n = 0
    with httpx.Client(base_url=writer_url, headers=HEADERS, timeout=30) as writer:
        while time.monotonic() - start < seconds:
            if during is not None:
                during(time.monotonic() - start)
            write = _one_write(writer, n, tag, rng, n_users, written, deleted, counts)
            n += 1
            if write is None:
                errors.append("writer error")
                continue
            acked = time.perf_counter()
            for client in clients:
                lags.append(_poll(client, write, acked, errors))
            time.sleep(0.05)  # a steady trickle, not a flood: ~10-15 writes/s
    for client in clients:
        client.close()
    return {"writes": n, "lags": lags, "written": written, "deleted": deleted}


def _one_write(
    writer: httpx.Client,
    n: int,
    tag: str,
    rng: random.Random,
    n_users: int,
    written: list[str],
    deleted: list[str],
    counts: dict[str, int],
) -> dict[str, Any] | None:
    kind = ("upsert", "feedback", "delete")[n % 3] if written else "upsert"
    try:
        if kind == "upsert":
            item_id = f"{tag}-{n}"
            body = {"id": item_id, "title": f"{rng.choice(WORDS)} {tag} {n}"}
            writer.post("/items", json=body).raise_for_status()
            written.append(item_id)
            return {"kind": kind, "id": item_id}
        if kind == "delete":
            item_id = written.pop(0)
            writer.delete(f"/items/{item_id}").raise_for_status()
            deleted.append(item_id)
            return {"kind": kind, "id": item_id}
        user = f"u{rng.randrange(n_users)}"
        body = {"user_id": user, "item_id": written[-1], "event": "like"}
        writer.post("/feedback", json=body).raise_for_status()
        count = writer.get(f"/users/{user}").json()["interactions"]
        return {"kind": kind, "user": user, "count": count}
    except httpx.HTTPError:
        return None


def _poll(client: httpx.Client, write: dict[str, Any], acked: float, errors: list[str]) -> float:
    deadline = acked + 10
    while time.perf_counter() < deadline:
        try:
            if visible(client, write):
                return time.perf_counter() - acked
        except httpx.HTTPError as exc:
            errors.append(f"poll {type(exc).__name__}")
            return float("nan")
        time.sleep(0.002)
    errors.append(f"not visible in 10 s: {write}")
    return float("inf")


def missing(urls: list[str], written: list[str], deleted: list[str]) -> dict[str, int]:
    """Items every replica should serve but one does not, and deleted ones still served."""
    out = {"not_served": 0, "deleted_but_served": 0, "not_recommendable": 0}
    for url in urls:
        with httpx.Client(base_url=url, headers=HEADERS, timeout=30) as client:
            for item_id in written:
                out["not_served"] += client.get(f"/items/{item_id}").status_code != 200
            for item_id in deleted:
                out["deleted_but_served"] += client.get(f"/items/{item_id}").status_code != 404
            for item_id in written[:: max(1, len(written) // 50)]:  # a sample, by recommend
                body = {"text": "anything", "k": 1, "allowed_ids": [item_id], "explain": False}
                found = client.post("/recommend", json=body).json().get("items", [])
                out["not_recommendable"] += [r["item_id"] for r in found] != [item_id]
    return out


def lag_summary(lags: list[float]) -> dict[str, Any]:
    finite = [x for x in lags if x == x and x != float("inf")]
    summary = percentiles(finite)
    summary["max_ms"] = round(max(finite) * 1e3, 2) if finite else None
    summary["unfinished"] = len(lags) - len(finite)
    return summary


# ---- throughput ------------------------------------------------------------------------------
def throughput(urls: list[str], seconds: float, per_replica: int, n_users: int) -> dict[str, Any]:
    readers = Readers(urls, per_replica, n_users)
    load_before = os.getloadavg()
    start = time.monotonic()
    with readers:
        time.sleep(seconds)
    took = time.monotonic() - start
    return {
        "replicas": len(urls),
        "clients": per_replica * len(urls),
        "req_per_s": round(readers.ok / took, 1),
        "latency": percentiles(readers.seconds),
        "errors": len(readers.errors),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def run_for(threads: list[threading.Thread], stop: threading.Event, seconds: float) -> float:
    """Run ``threads`` for ``seconds``, then set ``stop`` and join them; the seconds taken."""
    start = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return time.monotonic() - start


def write_rate(urls: list[str], seconds: float, per_replica: int, n_users: int) -> dict[str, Any]:
    """Closed-loop feedback writes (one interaction each: one transaction, one logged change)
    on every replica at once; each replica applies the others' changes meanwhile."""
    done: list[float] = []
    failed: list[str] = []
    stop = threading.Event()

    def loop(url: str, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, headers=HEADERS, timeout=30) as client:
            while not stop.is_set():
                body = {"user_id": f"u{rng.randrange(n_users)}", "item_id": "i0", "event": "click"}
                start = time.perf_counter()
                response = client.post("/feedback", json=body)
                if response.status_code == 200:
                    done.append(time.perf_counter() - start)
                else:
                    failed.append(str(response.status_code))

    threads = [
        threading.Thread(target=loop, args=(url, 1000 * n + k), daemon=True)
        for n, url in enumerate(urls)
        for k in range(per_replica)
    ]
    took = run_for(threads, stop, seconds)
    return {
        "replicas": len(urls),
        "writers": len(threads),
        "writes_per_s": round(len(done) / took, 1),
        "latency": percentiles(done),
        "errors": len(failed),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def log_commits(db_url: str, seconds: float, threads: int) -> dict[str, Any]:
    """The fleet-wide ceiling on writes: transactions that only log a change (the order lock,
    the change row, NOTIFY, the commit), from ``threads`` connections at once."""
    from coldbrew.store import Store
    from coldbrew.store.changes import ChangeLog

    store = Store(db_url)
    changes = ChangeLog(store, "bench")
    done: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            with store.transaction() as session:
                changes.record(session, "users", [])  # touches nothing: a no-op to apply
            done.append(time.perf_counter() - start)

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    took = run_for(workers, stop, seconds)
    store.close()
    return {
        "threads": threads,
        "commits_per_s": round(len(done) / took, 1),
        "latency": percentiles(done),
    }


# ---- the run ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--encoder", default="hashing:384")
    parser.add_argument("--seconds", type=float, default=20.0, help="per lag phase")
    parser.add_argument("--tp-seconds", type=float, default=15.0, help="per throughput run")
    parser.add_argument("--clients", type=int, default=4, help="readers per replica")
    parser.add_argument("--out", default="benchmarks/results/replicas")
    args = parser.parse_args()
    import pgserver

    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "args": vars(args),
    }
    with tempfile.TemporaryDirectory(prefix="coldbrew-replicas-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        fleet = Fleet(server.get_uri(), Path(tmp), args.encoder)
        try:
            run(fleet, args, report)
        finally:
            fleet.stop()
            server.cleanup()
    save_report(args.out, f"replicas-{report['date'][:16].replace(':', '-')}", report)


def run(fleet: Fleet, args: argparse.Namespace, report: dict[str, Any]) -> None:
    first = fleet.start()
    t = time.perf_counter()
    seed(first, args.items, args.users, args.events)
    report["seed_s"] = round(time.perf_counter() - t, 2)
    status = refit(first)
    report["refit"] = {
        "seconds": status["last"].get("seconds"),
        "version": status["version"],
        "outcomes": status["outcomes"],
        "error": status["last"].get("error"),
    }
    report["throughput"] = [throughput([first], args.tp_seconds, args.clients, args.users)]
    report["writes"] = [write_rate([first], args.tp_seconds, 2, args.users)]
    report["log_commits"] = [log_commits(fleet.db_url, 5, t) for t in (1, 4)]
    report["lag"] = {}
    errors: list[str] = []
    for n in (2, 3):
        fleet.start()
        urls = fleet.live()
        # a new replica serves the fleet's model (read from the database) from its start
        report.setdefault("model_on_start_s", []).append(wait_version(urls, status["version"]))
        report["throughput"].append(throughput(urls, args.tp_seconds, args.clients, args.users))
        with Readers(urls, 1, args.users) as readers:
            result = write_and_watch(urls[0], urls[1:], args.seconds, f"w{n}", args.users, errors)
        report["lag"][n] = {
            "writes": result["writes"],
            "lag": lag_summary(result["lags"]),
            "consistency": missing(urls, result["written"], result["deleted"]),
            "reader_errors": len(readers.errors),
            "reads": readers.ok,
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        }
    report["writes"].append(write_rate(fleet.live(), args.tp_seconds, 2, args.users))
    report["kill"] = kill_phase(fleet, args, errors)
    report["errors_seen"] = errors[:20]
    report["ready_s"] = fleet.ready_s


def kill_phase(fleet: Fleet, args: argparse.Namespace, errors: list[str]) -> dict[str, Any]:
    """Kill -9 the trainer (replica 0) halfway through a write phase on replica 1; readers on
    replicas 1 and 2 count their errors."""
    survivors = fleet.urls[1:3]
    takeover: list[float | None] = []
    watcher: list[threading.Thread] = []

    def kill_halfway(elapsed: float) -> None:
        if not watcher and elapsed > args.seconds / 2:
            fleet.kill(0)
            killed = time.monotonic()
            thread = threading.Thread(
                target=lambda: takeover.append(_trainer_after(survivors, killed)), daemon=True
            )
            thread.start()
            watcher.append(thread)

    with Readers(survivors, 2, args.users) as readers:
        result = write_and_watch(
            survivors[0], survivors[1:], args.seconds, "k", args.users, errors, kill_halfway
        )
    for thread in watcher:
        thread.join(timeout=60)
    return {
        "writes": result["writes"],
        "lag": lag_summary(result["lags"]),
        "reads_by_survivors": readers.ok,
        "errors_seen_by_survivors_clients": len(readers.errors),
        "error_samples": readers.errors[:5],
        "consistency": missing(survivors, result["written"], result["deleted"]),
        "trainer_after_kill_s": takeover[0] if takeover else None,
    }


def _trainer_after(urls: list[str], killed: float, timeout_s: float = 30) -> float | None:
    """Seconds from the kill until a survivor reports itself the trainer."""
    while time.monotonic() - killed < timeout_s:
        for url in urls:
            status = httpx.get(f"{url}/admin/refit", headers=HEADERS, timeout=30).json()
            if status.get("trainer"):
                return round(time.monotonic() - killed, 2)
        time.sleep(0.1)
    return None


if __name__ == "__main__":
    main()
