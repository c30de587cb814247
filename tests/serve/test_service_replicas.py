"""Replicas: two services over one PostgreSQL database serve the same state; SQLite refuses a
second serving process.

The replicas here are two apps in this process, each with its own engine, connections,
listener thread and trainer election, over one real PostgreSQL (pgserver): nothing is shared
between them but the database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import CATALOGUE, WRITE, WRITE_KEY, free_port, load_catalogue

from coldbrew.live.fleet import DatabaseInUse, single_process

BOUND = 2.0
"""Seconds a write may take to reach the other replica here (measured: well under one; the
margin is for a loaded 2-core test machine)."""
ROOT = Path(__file__).resolve().parents[2]


ON_POSTGRES = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


@pytest.fixture
def replicas(open_client: Callable[..., TestClient], tmp_path: Path) -> Callable[..., TestClient]:
    """Open replicas over one PostgreSQL database, each with its own models directory (as on
    its own machine) and no refit unless asked."""
    opened = [0]

    def _open(**kwargs: Any) -> TestClient:
        opened[0] += 1
        kwargs.setdefault("models_dir", str(tmp_path / f"models{opened[0]}"))
        return open_client(refit_every=0, refit_minutes=0, **kwargs)

    return _open


def within(check: Callable[[], bool], seconds: float = BOUND) -> float:
    """Seconds until ``check()`` holds; fails past ``seconds``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not visible within {seconds} s")
        time.sleep(0.01)
    return time.monotonic() - start


def top(client: TestClient, **body: Any) -> list[str]:
    response = client.post("/recommend", json={"explain": False, **body}, headers=WRITE)
    assert response.status_code == 200, response.text
    return [r["item_id"] for r in response.json()["items"]]


def engine(client: TestClient) -> Any:
    return client.app.state.engine  # type: ignore[attr-defined]


@pytest.mark.postgres
@ON_POSTGRES
def test_writes_deletes_and_forget_reach_the_other_replica(
    replicas: Callable[..., TestClient],
) -> None:
    a, b = replicas(), replicas()
    load_catalogue(a)  # through A only
    within(lambda: b.get("/items/cookbook").status_code == 200)
    within(lambda: b.get("/users/hiker", headers=WRITE).status_code == 200)
    lags = []
    item = {"id": "lantern", "title": "Solar camping lantern", "description": "lantern for tents"}
    assert a.post("/items", json=item, headers=WRITE).status_code == 200
    lags.append(within(lambda: top(b, text="solar camping lantern", k=1) == ["lantern"]))
    # B answers from the vector A stored: identical scores on both, nothing re-encoded
    assert engine(b).store.counts()["vectors"] == len(CATALOGUE) + 1
    assert top(a, text="camping", k=5) == top(b, text="camping", k=5)
    # a write through B (feedback) moves the user's answer on A
    like = {"user_id": "hiker", "item_id": "lantern", "event": "like"}
    assert b.post("/feedback", json=like, headers=WRITE).status_code == 200
    lags.append(within(lambda: "lantern" in _liked(a, "hiker")))
    assert "lantern" not in top(a, user_id="hiker", k=9)  # seen: excluded, as on B
    # deletes: an item through B, an interaction through A
    assert b.delete("/items/parka", headers=WRITE).status_code == 200
    lags.append(within(lambda: a.get("/items/parka").status_code == 404))
    assert "parka" not in top(a, text="warm winter parka", k=9)
    assert a.delete("/interactions/i2", headers=WRITE).status_code == 200
    lags.append(within(lambda: "keyboard" not in _liked(b, "gamer")))
    # forget-user through A: gone from B's answers and state
    assert a.delete("/users/hiker", headers=WRITE).status_code == 200
    lags.append(within(lambda: b.get("/users/hiker", headers=WRITE).status_code == 404))
    assert "hiker" not in engine(b).users
    assert b.post("/recommend", json={"user_id": "hiker"}, headers=WRITE).status_code == 404
    assert max(lags) < BOUND, lags
    metrics = b.get("/metrics").text  # what an operator watches
    assert "coldbrew_replica_trainer 0.0" in metrics  # A trains: it started first
    applied = re.search(r"^coldbrew_replica_changes_applied_total (\S+)$", metrics, re.M)
    assert applied is not None and float(applied.group(1)) >= 6
    lag = re.search(r"^coldbrew_replica_lag_seconds (\S+)$", metrics, re.M)
    assert lag is not None and 0 < float(lag.group(1)) < BOUND


def _liked(client: TestClient, user_id: str) -> list[str]:
    """The items in the user's history as this replica holds it (what its answers read)."""
    _, history = engine(client).get_user(user_id)
    return [i.item_id for i in history]


@pytest.mark.postgres
@ON_POSTGRES
def test_a_replica_started_later_serves_the_same_and_follows(
    replicas: Callable[..., TestClient],
) -> None:
    a = replicas()
    load_catalogue(a)
    b = replicas()  # reads everything at start
    assert b.get("/items/cookbook").status_code == 200
    assert top(a, user_id="hiker", k=5) == top(b, user_id="hiker", k=5)
    a.post("/items", json={"id": "kettle", "title": "Steel tea kettle"}, headers=WRITE)
    within(lambda: b.get("/items/kettle").status_code == 200)


@pytest.mark.slow  # two real refits (about 20 s each on 2 busy cores)
@pytest.mark.postgres
@ON_POSTGRES
def test_one_trainer_and_every_replica_serves_its_versions(
    replicas: Callable[..., TestClient],
) -> None:
    from test_service_refit import FORGET, SECRETS, _files_mention, load_shop

    a, b = replicas(refit_min_interactions=20), replicas(refit_min_interactions=20)
    trainers = [c for c in (a, b) if engine(c).fleet.is_trainer()]
    assert len(trainers) == 1  # elected: exactly one
    trainer, other = trainers[0], b if trainers[0] is a else a
    load_shop(other)
    # asked on the replica that does not train: the trainer refits (once, for both)
    started = other.post("/admin/refit", headers=WRITE).json()
    assert started["status"] == "requested"
    within(lambda: engine(other).info.version == "v000001", 120)
    lag = within(lambda: engine(trainer).info.version == "v000001")
    assert lag < BOUND
    within(lambda: engine(trainer).refitter.stats.counts["swapped"] == 1)  # counted after
    assert engine(other).refitter.stats.counts == {"swapped": 0, "kept": 0, "failed": 0}
    assert top(a, user_id="u1", k=5) == top(b, user_id="u1", k=5)
    store = engine(a).fleet.log
    assert store.versions() == ["v000001"]
    stored = b"".join(store.files("v000001").values())
    assert FORGET.encode("utf-32-le") in stored  # the id maps their rows; never their words
    assert SECRETS[0].encode() not in stored and SECRETS[0].encode("utf-32-le") not in stored
    # forget-user on the follower: the fleet's copy and each replica's are rewritten without
    # them at once; a forced refit on the trainer, then only its version is left
    assert other.delete(f"/users/{FORGET}", headers=WRITE).status_code == 200
    stored = b"".join(store.files("v000001").values())
    assert FORGET.encode() not in stored and FORGET.encode("utf-32-le") not in stored
    for client in (other, trainer):
        within(lambda c=client: not _files_mention(engine(c).versions.root, FORGET))
    within(lambda: engine(other).info.version == "v000002", 120)
    within(lambda: engine(trainer).info.version == "v000002")
    within(lambda: store.versions() == ["v000002"])  # pruned once the trainer serves it
    files = store.files("v000002")
    assert files and not any(FORGET.encode() in d for d in files.values())
    assert not any(FORGET.encode("utf-32-le") in d for d in files.values())
    local = engine(other).versions  # the follower's copies: the old one deleted too
    within(lambda: local.versions() == ["v000002"])


@pytest.mark.postgres
@ON_POSTGRES
def test_a_replica_takes_its_own_changes_as_seen_and_yields_to_reads(
    replicas: Callable[..., TestClient],
) -> None:
    """Its own writes' notifications move it past them without applying anything (nor, while
    they come right after the last change seen, reading the log back); the other replica
    applies them; and its catching up steps aside for the service's reads, as writes do."""
    a, b = replicas(), replicas()
    for n in range(3):
        assert a.post("/items", json={"id": f"o{n}", "title": f"own {n}"}, headers=WRITE).is_success
    last = engine(a).fleet.log.last_id()
    within(lambda: engine(a).fleet.seen == last)
    within(lambda: b.get("/items/o2").status_code == 200)
    assert engine(a).fleet.applied == 0 and engine(b).fleet.applied >= 3
    assert engine(a).fleet.step_aside == a.app.state.pace.step_aside  # type: ignore[attr-defined]


@pytest.mark.postgres
@ON_POSTGRES
def test_the_trainer_role_moves_when_the_trainer_stops(
    replicas: Callable[..., TestClient],
) -> None:
    a = replicas()
    b = replicas()
    assert engine(a).fleet.is_trainer() and not engine(b).fleet.is_trainer()
    a.__exit__(None, None, None)  # its connection closes: the lock is free
    within(lambda: engine(b).fleet.is_trainer())


@pytest.mark.postgres
@ON_POSTGRES
def test_the_log_is_pruned_and_a_replica_behind_it_stops_being_ready(
    replicas: Callable[..., TestClient],
) -> None:
    a, b = replicas(), replicas()
    for n in range(5):
        assert a.post(
            "/items", json={"id": f"x{n}", "title": f"thing {n}"}, headers=WRITE
        ).is_success
    within(lambda: b.get("/items/x4").status_code == 200)
    log = engine(a).fleet.log
    last = log.last_id()
    assert log.prune(keep_seconds=0, keep_last=2) >= 3
    assert [c.id for c in log.since(0)] == [last - 1, last]
    assert int(log.state("pruned_through") or 0) == last - 2
    fleet = engine(b).fleet
    fleet.stop()  # cut off from the fleet...
    fleet.seen = 0  # ...since before the pruned changes
    fleet._check_retention()
    assert b.get("/readyz").status_code == 503
    assert a.get("/readyz").status_code == 200


@pytest.mark.slow  # two `coldbrew serve` processes start (10-20 s each on 2 busy cores)
@pytest.mark.postgres
def test_two_serve_processes_and_a_kill_9(pg_server: Any, tmp_path: Path) -> None:
    """Real ``coldbrew serve`` processes: a write through one is served by the other, and when
    the trainer is killed with SIGKILL the survivor keeps answering and takes over training."""
    import httpx

    name = f"procs{time.monotonic_ns()}"
    pg_server.psql(f"CREATE SCHEMA {name};")
    url = f"{pg_server.get_uri()}&options=-csearch_path%3D{name}"
    servers, bases = [], []
    try:
        for n in range(2):
            port = free_port()
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLDBREW_API_KEYS": WRITE_KEY}
            env["COLDBREW_MODELS_DIR"] = str(tmp_path / f"models{n}")
            command = [sys.executable, "-m", "coldbrew", "serve", "--db", url, "--port", str(port)]
            servers.append(subprocess.Popen([*command, "--encoder", "hashing"], env=env))
            bases.append(f"http://127.0.0.1:{port}")
            within(lambda b=bases[-1]: _ready(b), 120)  # one at a time: the first trains
        first, second = (httpx.Client(base_url=b, headers=WRITE, timeout=30) for b in bases)
        assert first.get("/admin/refit").json()["trainer"] is True
        assert second.get("/admin/refit").json()["trainer"] is False
        item = {"id": "lantern", "title": "Solar camping lantern"}
        assert first.post("/items", json=item).status_code == 200
        within(lambda: second.get("/items/lantern").status_code == 200)
        servers[0].send_signal(signal.SIGKILL)
        servers[0].wait()
        within(lambda: second.get("/admin/refit").json()["trainer"] is True)
        body = {"text": "solar lantern", "k": 1, "explain": False}
        assert second.post("/recommend", json=body).json()["items"][0]["item_id"] == "lantern"
    finally:
        for server in servers:
            server.kill()
            server.wait()


def _ready(base: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_sqlite_refuses_a_second_serving_process(tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLDBREW_API_KEYS": "replica-key-5e1b9"}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from coldbrew.live.fleet import single_process\n"
            f"with single_process('sqlite:///{db}'):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(DatabaseInUse, match=r"served by another process \(pid"),
            single_process(f"sqlite:///{db}"),
        ):
            pass
        second = subprocess.run(
            [sys.executable, "-m", "coldbrew", "serve", "--db", str(db), "--encoder", "hashing"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert f"{db} is served by another process (pid {holder.pid})" in second.stderr
        assert "run several replicas over PostgreSQL" in second.stderr
    finally:
        holder.kill()
        holder.wait()
    # free once the holder is gone, and shared within one process
    with single_process(f"sqlite:///{db}"), single_process(f"sqlite:///{db}"):
        pass
