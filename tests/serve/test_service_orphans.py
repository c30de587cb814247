"""A refit worker dies with its service (issue 28, finding 4): after ``kill -9`` of a real
``coldbrew serve`` process its refit child, and the refit server it was forked from (issue 29),
are gone within seconds, and no version is written.

The service starts a refit at start-up (stored events, no model yet); the test freezes that child
as soon as it appears (so it cannot finish first, whatever the load), kills the server, lets the
child go on, then watches both pids and the models directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE_KEY, free_port, make_settings
from test_service_refit import load_shop

from coldbrew.live.lifeline import Lifeline, ParentGone
from coldbrew.live.refit import RefitJob, run_refit
from coldbrew.serve import create_app
from coldbrew.text import HashingEncoder

ROOT = Path(__file__).resolve().parents[2]
GONE_WITHIN = 5.0
"""Seconds the orphaned worker may take to end (the issue's bound)."""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A SQLite database with a catalogue, users and their events, and no model yet."""
    db = tmp_path / "shop.sqlite"
    app = create_app(make_settings(str(db), model="zeroshot"), encoder=HashingEncoder(256))
    with TestClient(app) as client:
        load_shop(client)
    return db


@pytest.fixture
def serve(shop: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``coldbrew serve`` on ``shop``: it starts a refit child at once (events, no model)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "COLDBREW_API_KEYS": WRITE_KEY,
        "COLDBREW_MODELS_DIR": str(tmp_path / "models"),
        "COLDBREW_REFIT_MIN_INTERACTIONS": "20",
    }
    command = [sys.executable, "-m", "coldbrew", "serve", "--db", str(shop), "--encoder", "hashing"]
    server = subprocess.Popen([*command, "--port", str(free_port())], env=env)
    yield server
    server.kill()
    server.wait()


def refit_child(pid: int, seconds: float = 60) -> tuple[int, int]:
    """The pids of ``pid``'s refit server (multiprocessing's fork server, not its resource
    tracker) and of the refit child forked from it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for server in _children(pid):
            if b"forkserver" in _read(f"/proc/{server}/cmdline"):
                forked = _children(server)
                if forked:
                    return server, forked[0]
        time.sleep(0.05)
    raise AssertionError(f"process {pid} started no refit child in {seconds} s")


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found = [_read(str(t / "children")).split() for t in tasks.iterdir()] if tasks.exists() else []
    return [int(c) for ids in found for c in ids]


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie nobody has reaped yet has ended)."""
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat.rsplit(b")", 1)[1].split()[0] != b"Z"


def versions(models: Path) -> list[str]:
    return sorted(p.name for p in models.rglob("v0*") if p.is_dir()) if models.exists() else []


@pytest.mark.slow  # `coldbrew serve`, its refit server's imports, a refit (10-20 s, 2 busy cores)
def test_a_refit_worker_dies_with_its_killed_server(
    serve: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """The worker is frozen (``SIGSTOP``) the moment it is found, so it is provably still
    refitting, with nothing written, when its server is killed, however loaded the machine;
    let go (``SIGCONT``) once the server is gone, it must end by itself."""
    server, worker = refit_child(serve.pid)
    with frozen(worker):
        assert running(worker) and not versions(tmp_path / "models")  # still refitting
        serve.send_signal(signal.SIGKILL)
        serve.wait()
    deadline = time.monotonic() + GONE_WITHIN
    while (running(worker) or running(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(worker), f"refit worker {worker} outlived its server"
    assert not running(server), f"refit server {server} outlived its service"
    time.sleep(1.0)  # a worker that escaped would be writing now
    assert versions(tmp_path / "models") == []


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """``pid`` stopped for the block, continued after it whatever happened (a stopped process
    never ends by itself)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def test_a_lifeline_sees_its_parent_and_a_changed_parent() -> None:
    here = Lifeline.here()
    assert here.alive()
    here.check("anything")  # the parent (this test's runner) is alive: no error
    orphan = Lifeline(parent_pid=here.parent_pid + 1)  # as if re-parented since
    assert not orphan.alive()
    with pytest.raises(ParentGone, match="before committing"):
        orphan.check("committing")


@pytest.mark.parametrize("step", ["committing the version", "handing the version over"])
def test_a_refit_told_its_service_is_gone_leaves_no_version(
    shop: Path, tmp_path: Path, step: str
) -> None:
    """The commit itself re-checks: gone right before the rename, nothing is renamed; gone
    right after it, the committed version is removed again."""
    models = tmp_path / "models"
    job = RefitJob(db_url=str(shop), models_dir=str(models), encoder={}, serving=None)
    asked: list[str] = []

    def check(next_step: str) -> None:
        asked.append(next_step)
        if next_step == step:
            raise ParentGone(f"gone before {next_step}")

    with pytest.raises(ParentGone):
        run_refit(job, HashingEncoder(256), check)
    assert asked[0] == "reading the database" and asked[-1] == step
    assert versions(models) == []
    assert [p.name for p in models.iterdir()] == []  # no half-written directory either
