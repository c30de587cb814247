"""The database goes away and comes back (issue 13, finding 5): ``/readyz`` and writes answer 503
with a JSON body while PostgreSQL refuses connections, and everything works again once it is back,
without a restart."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE, load_catalogue, make_settings

from coldbrew.serve import create_app
from coldbrew.text import HashingEncoder

pytestmark = pytest.mark.postgres
_names = itertools.count()


def _database(server: Any) -> tuple[str, str]:
    """A database of its own on the session's server (connections to it can be refused)."""
    name = f"outage{next(_names)}"
    server.psql(f"CREATE DATABASE {name};")
    uri: str = server.get_uri()
    base, _, query = uri.partition("?")
    return name, f"{base.rsplit('/', 1)[0]}/{name}?{query}"


def _refuse(server: Any, name: str, refused: bool) -> None:
    server.psql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {'false' if refused else 'true'};")
    if refused:
        server.psql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        )


def test_database_outage_gives_json_503_and_recovers(pg_server: Any) -> None:
    name, url = _database(pg_server)
    with TestClient(create_app(make_settings(url), encoder=HashingEncoder(256))) as client:
        load_catalogue(client)
        _refuse(pg_server, name, True)
        try:
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "database unreachable"
            assert ready.headers["retry-after"] == "5"  # issue 28: it had none on PostgreSQL
            write = client.post("/items", json={"id": "lamp", "title": "Lamp"}, headers=WRITE)
            assert write.status_code == 503, write.text
            assert "database is unavailable" in write.json()["detail"]
            assert write.headers["retry-after"] == "5"
            # reads from memory keep working
            assert client.post("/recommend", json={"text": "tent"}).status_code == 200
        finally:
            _refuse(pg_server, name, False)
        assert client.get("/readyz").status_code == 200
        lamp = {"id": "lamp", "title": "Camping lamp"}
        assert client.post("/items", json=lamp, headers=WRITE).status_code == 200
        found = client.post("/recommend", json={"text": "camping lamp", "k": 1}).json()
        assert found["items"][0]["item_id"] == "lamp"
