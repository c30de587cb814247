"""Service fixtures: the same tests run on SQLite and on a real PostgreSQL (pgserver)."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service tests need: pip install 'coldbrew[serve]'")

from fastapi.testclient import TestClient  # noqa: E402

from coldbrew.serve import create_app  # noqa: E402
from coldbrew.serve.settings import Settings  # noqa: E402
from coldbrew.text import HashingEncoder  # noqa: E402

WRITE_KEY = "test-write-key"
WRITE = {"X-API-Key": WRITE_KEY}

CATALOGUE = [
    {
        "id": "jacket",
        "title": "Lightweight spring jacket",
        "description": "A breathable shell jacket for spring outings",
        "attributes": {"category": "clothing", "price": 59.0},
    },
    {
        "id": "parka",
        "title": "Insulated winter parka",
        "description": "Warm down parka with a hood for deep winter",
        "attributes": {"category": "clothing", "price": 189.0},
    },
    {
        "id": "boots",
        "title": "Waterproof hiking boots",
        "description": "Leather boots for mountain hiking trails",
        "attributes": {"category": "shoes"},
    },
    {
        "id": "tent",
        "title": "Ultralight camping tent",
        "description": "Two person tent for camping and hiking trips",
        "attributes": {"category": "outdoor"},
    },
    {
        "id": "keyboard",
        "title": "Mechanical gaming keyboard",
        "description": "Keyboard with brown switches for gaming",
        "attributes": {"category": "electronics"},
    },
    {
        "id": "mouse",
        "title": "Wireless gaming mouse",
        "description": "Light mouse for competitive gaming",
        "attributes": {"category": "electronics"},
    },
    {
        "id": "skillet",
        "title": "Cast iron skillet",
        "description": "A heavy pan for cooking steak at home",
        "attributes": {"category": "kitchen"},
    },
    {
        "id": "scifi",
        "title": "三体 科幻小说",
        "description": "一本关于外星文明的科幻小说",
        "attributes": {"category": "books"},
    },
    {
        "id": "cookbook",
        "title": "家常菜 食谱",
        "description": "简单好做的家常菜食谱",
        "attributes": {"category": "books"},
    },
]
USERS = [
    {"id": "hiker", "text": "I love hiking and camping", "attributes": {"age": "25-34"}},
    {"id": "gamer", "text": "", "attributes": {"age": "18-24", "occupation": "student"}},
]
INTERACTIONS = [
    {"id": "i1", "user_id": "hiker", "item_id": "boots", "event": "purchase", "timestamp": 1.0},
    {"id": "i2", "user_id": "gamer", "item_id": "keyboard", "event": "like", "timestamp": 1.0},
]

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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh, empty database: a SQLite file, or a new schema on the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "coldbrew.sqlite")
    server = request.getfixturevalue("pg_server")
    name = f"t{next(_names)}"
    server.psql(f"CREATE SCHEMA {name};")
    uri: str = server.get_uri()
    return f"{uri}&options=-csearch_path%3D{name}"


def make_settings(db_url: str, **kwargs: Any) -> Settings:
    kwargs.setdefault("write_key_hashes", Settings.keys(WRITE_KEY))
    return Settings(db_url=db_url, **kwargs)


@pytest.fixture
def open_client(db_url: str) -> Iterator[Callable[..., TestClient]]:
    """Open a client on ``db_url`` (call again after closing one: that is a restart)."""
    opened: list[TestClient] = []

    def _open(**kwargs: Any) -> TestClient:
        app = create_app(make_settings(db_url, **kwargs), encoder=HashingEncoder(256))
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        return client

    yield _open
    for client in opened:
        client.__exit__(None, None, None)


def load_catalogue(client: TestClient) -> None:
    for path, key, rows in (
        ("/items/batch", "items", CATALOGUE),
        ("/users/batch", "users", USERS),
        ("/interactions/batch", "interactions", INTERACTIONS),
    ):
        response = client.post(path, json={key: rows}, headers=WRITE)
        assert response.status_code == 200, response.text


@pytest.fixture
def client(open_client: Callable[..., TestClient]) -> TestClient:
    c = open_client()
    load_catalogue(c)
    return c


def counts(client: TestClient) -> dict[str, int]:
    found: dict[str, int] = client.app.state.engine.store.counts()  # type: ignore[attr-defined]
    return found
