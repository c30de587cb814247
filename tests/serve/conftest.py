"""Service fixtures: the same tests run on SQLite and on a real PostgreSQL (pgserver)."""

from __future__ import annotations

import itertools
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service tests need: pip install 'coldbrew[serve]'")

from fastapi.testclient import TestClient
from servicekit import free_port, load_catalogue, make_settings

from coldbrew.serve import create_app
from coldbrew.text import HashingEncoder

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    pgserver = pytest.importorskip("pgserver", reason="needs: pip install 'coldbrew[postgres]'")
    with tempfile.TemporaryDirectory(prefix="coldbrew-pg-") as directory:
        server = pgserver.get_server(directory, cleanup_mode="stop")
        # a throwaway test server: durability only slows the suite down
        server.psql("ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;")
        server.psql("SELECT pg_reload_conf();")
        yield server
        server.cleanup()


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _fresh_database(request: pytest.FixtureRequest, directory: Any) -> str:
    """A SQLite file in ``directory``, or a new schema on the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(directory / "coldbrew.sqlite")
    server = request.getfixturevalue("pg_server")
    name = f"t{next(_names)}"
    server.psql(f"CREATE SCHEMA {name};")
    uri: str = server.get_uri()
    return f"{uri}&options=-csearch_path%3D{name}"


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh, empty database: a SQLite file, or a new schema on the session's PostgreSQL."""
    return _fresh_database(request, tmp_path)


@pytest.fixture(scope="module", params=DATABASES)
def module_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One loaded client per database for a whole module, for tests that leave it as they
    found it (refused requests, or writes they undo): one start-up instead of one per test."""
    url = _fresh_database(request, tmp_path_factory.mktemp("module"))
    with TestClient(create_app(make_settings(url), encoder=HashingEncoder(256))) as client:
        load_catalogue(client)
        yield client


@pytest.fixture
def open_client(db_url: str, tmp_path: Any) -> Iterator[Callable[..., TestClient]]:
    """Open a client on ``db_url`` (call again after closing one: that is a restart)."""
    opened: list[TestClient] = []

    def _open(**kwargs: Any) -> TestClient:
        kwargs.setdefault("models_dir", str(tmp_path / "models"))
        app = create_app(make_settings(db_url, **kwargs), encoder=HashingEncoder(256))
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        return client

    yield _open
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(open_client: Callable[..., TestClient]) -> TestClient:
    c = open_client()
    load_catalogue(c)
    return c


@pytest.fixture
def serve_live(tmp_path: Any) -> Iterator[Callable[..., str]]:
    """Start real uvicorn servers (the service's own config) on free loopback ports; each call
    takes settings overrides and an optional ``db_url`` (default: a new SQLite file)."""
    uvicorn = pytest.importorskip("uvicorn")
    from coldbrew.serve.server import server_config

    running: list[tuple[Any, threading.Thread]] = []

    def _start(db_url: str | None = None, **kwargs: Any) -> str:
        settings = make_settings(db_url or str(tmp_path / f"live{len(running)}.sqlite"), **kwargs)
        app = create_app(settings, encoder=HashingEncoder(256))
        port = free_port()
        server = uvicorn.Server(server_config(app, settings, "127.0.0.1", port))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield _start
    for server, _ in running:
        server.should_exit = True
    for _, thread in running:
        thread.join(timeout=10)


@pytest.fixture
def live_server(serve_live: Callable[..., str]) -> str:
    """A real uvicorn server on a free loopback port, over an empty SQLite database."""
    return serve_live()
