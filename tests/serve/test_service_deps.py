"""The routes reach their dependencies through module-level functions, so overrides work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import cast

from fastapi import FastAPI
from fastapi.testclient import TestClient
from servicekit import WRITE

from coldbrew.config.settings import Settings
from coldbrew.live.engine import Engine
from coldbrew.serve.deps import get_engine, get_settings, require_writer


def test_dependency_overrides_replace_settings_auth_and_engine(
    open_client: Callable[..., TestClient],
) -> None:
    client = open_client()
    app = cast(FastAPI, client.app)
    assert client.get("/meta").status_code == 200
    assert client.post("/items", json={"id": "a", "title": "A"}).status_code == 401

    # settings that need a read key: every read route's check follows them
    settings: Settings = app.state.settings
    closed = replace(settings, read_key_hashes=Settings.keys("reader-key-for-tests-2b"))
    app.dependency_overrides[get_settings] = lambda: closed
    assert client.get("/meta").status_code == 401
    meta = client.get("/meta", headers={"X-API-Key": "reader-key-for-tests-2b"})
    assert meta.status_code == 200 and meta.json()["reads_need_key"] is True

    # writes without a key once the write check is replaced; they reach the real engine
    app.dependency_overrides[require_writer] = lambda: None
    assert client.post("/items", json={"id": "a", "title": "A"}).status_code == 200
    assert (
        client.get("/items/a", headers={"X-API-Key": "reader-key-for-tests-2b"}).json()["title"]
        == "A"
    )

    # the engine, too: the routes see the one the override hands them
    served: list[Engine] = []

    def engine_seen() -> Engine:
        found: Engine = app.state.engine
        served.append(found)
        return found

    app.dependency_overrides[get_engine] = engine_seen
    assert client.get("/items/a", headers=WRITE).status_code == 200
    assert served == [app.state.engine]

    app.dependency_overrides.clear()
    assert client.get("/meta").json()["reads_need_key"] is False
    assert client.post("/items", json={"id": "b", "title": "B"}).status_code == 401
