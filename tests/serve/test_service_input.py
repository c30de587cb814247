"""Auth and bad input: every write endpoint refuses with a 4xx that names the problem, and
writes nothing at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE, WRITE_KEY, counts, load_catalogue

from coldbrew.config.settings import Settings

GOOD_ITEM = {"id": "new", "title": "New lamp"}
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/items", GOOD_ITEM),
    ("POST", "/items/batch", {"items": [GOOD_ITEM]}),
    ("POST", "/users", {"id": "nu", "text": "hello"}),
    ("POST", "/users/batch", {"users": [{"id": "nu"}]}),
    ("POST", "/interactions", {"user_id": "gamer", "item_id": "mouse"}),
    ("POST", "/interactions/batch", {"interactions": [{"user_id": "gamer", "item_id": "mouse"}]}),
    ("POST", "/feedback", {"user_id": "gamer", "item_id": "mouse", "event": "like"}),
    ("DELETE", "/items/jacket", {}),
    ("DELETE", "/users/gamer", {}),
    ("DELETE", "/interactions/i1", {}),
]


def _send(client: TestClient, method: str, path: str, body: dict[str, Any], **kw: Any) -> Any:
    if method == "DELETE":
        return client.delete(path, **kw)
    return client.post(path, json=body, **kw)


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_writes_need_the_right_key(
    client: TestClient, method: str, path: str, body: dict[str, Any]
) -> None:
    before = counts(client)
    missing = _send(client, method, path, body)
    assert missing.status_code == 401 and "API key" in missing.json()["detail"]
    wrong = _send(client, method, path, body, headers={"X-API-Key": "not-the-key"})
    assert wrong.status_code == 403 and "not valid" in wrong.json()["detail"]
    assert counts(client) == before
    right = _send(client, method, path, body, headers={"Authorization": f"Bearer {WRITE_KEY}"})
    assert right.status_code == 200, right.text


def test_optional_read_key(open_client: Callable[..., TestClient]) -> None:
    client = open_client(read_key_hashes=Settings.keys("reader-key-for-tests-2b"))
    load_catalogue(client)
    assert client.post("/recommend", json={"text": "tent"}).status_code == 401
    ok = client.post(
        "/recommend", json={"text": "tent"}, headers={"X-API-Key": "reader-key-for-tests-2b"}
    )
    assert ok.status_code == 200
    assert client.post("/recommend", json={"text": "tent"}, headers=WRITE).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_writes_are_refused_when_no_key_is_configured(
    open_client: Callable[..., TestClient],
) -> None:
    client = open_client(write_key_hashes=frozenset())
    response = client.post("/items", json=GOOD_ITEM, headers=WRITE)
    assert response.status_code == 403 and "COLDBREW_API_KEYS" in response.json()["detail"]


def test_keys_are_held_only_as_hashes() -> None:
    settings = Settings.from_env(
        {"COLDBREW_API_KEYS": "alpha-key-for-tests-9, sha256:" + "ab" * 32}
    )
    assert "alpha-key" not in repr(settings)
    assert settings.can_write("alpha-key-for-tests-9") and not settings.can_write("beta")


BAD: list[tuple[str, str, dict[str, Any], str]] = [
    ("/items", {"id": "x", "title": ""}, "title"),
    ("/items", {"title": "no id"}, "id"),
    ("/items", {"id": "has space", "title": "t"}, "id"),
    ("/items", {"id": "x", "title": "t", "colour": "red"}, "colour"),
    ("/items", {"id": "x", "title": "t", "description": "d" * 10_001}, "description"),
    ("/items", {"id": "x", "title": "t", "attributes": {"a": {"nested": 1}}}, "attributes"),
    (
        "/items/batch",
        {"items": [{"id": "ok1", "title": "fine"}, {"id": "bad", "title": ""}]},
        "items.1.title",
    ),
    ("/items/batch", {"items": []}, "items"),
    ("/users", {"id": "u", "text": "x" * 2001}, "text"),
    ("/users", {"id": "u", "attributes": "young"}, "attributes"),
    ("/users/batch", {"users": [{"id": "ok"}, {"id": ""}]}, "users.1.id"),
    ("/interactions", {"user_id": "gamer", "item_id": "mouse", "event": "stare"}, "event"),
    ("/interactions", {"user_id": "gamer", "item_id": "mouse", "timestamp": "noon"}, "timestamp"),
    (
        "/interactions/batch",
        {"interactions": [{"user_id": "gamer", "item_id": "mouse"}, {"user_id": "gamer"}]},
        "interactions.1.item_id",
    ),
    (
        "/interactions/batch",
        {
            "interactions": [
                {"user_id": "brand-new", "item_id": "mouse"},
                {"user_id": "gamer", "item_id": "ghost-item"},
            ]
        },
        "ghost-item",
    ),
    ("/feedback", {"user_id": "gamer", "item_id": "mouse", "event": "view"}, "event"),
    ("/feedback", {"user_id": "gamer", "event": "like"}, "item_id"),
]


@pytest.mark.parametrize(("path", "body", "named"), BAD, ids=[f"{p}:{n}" for p, _, n in BAD])
def test_malformed_writes_are_refused_whole(
    client: TestClient, path: str, body: dict[str, Any], named: str
) -> None:
    before = counts(client)
    users_before = set(client.app.state.engine.users)  # type: ignore[attr-defined]
    response = client.post(path, json=body, headers=WRITE)
    assert response.status_code == 422, response.text
    assert named in response.json()["detail"]
    assert counts(client) == before
    assert set(client.app.state.engine.users) == users_before  # type: ignore[attr-defined]


def test_batch_errors_list_each_bad_row(client: TestClient) -> None:
    rows = [
        {"user_id": "a", "item_id": "mouse"},
        {"user_id": "b", "item_id": "nope-1"},
        {"user_id": "c", "item_id": "nope-2"},
    ]
    response = client.post("/interactions/batch", json={"interactions": rows}, headers=WRITE)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "item_id"), (2, "item_id")]
    assert "nothing was written" in response.json()["detail"]


def test_malformed_json_and_wrong_types(client: TestClient) -> None:
    response = client.post(
        "/items", content=b"{not json", headers={**WRITE, "content-type": "application/json"}
    )
    assert response.status_code == 422 and "body" in response.json()["detail"]
    response = client.post("/recommend", json={"text": "x", "k": 0})
    assert response.status_code == 422 and "k" in response.json()["detail"]
    response = client.post("/recommend", json={})
    assert response.status_code == 422 and "user_id" in response.json()["detail"]


def test_size_limits(open_client: Callable[..., TestClient]) -> None:
    client = open_client(max_body_bytes=4096)
    load_catalogue(client)
    before = counts(client)
    big = {"items": [{"id": f"i{n}", "title": "x" * 100} for n in range(100)]}
    response = client.post("/items/batch", json=big, headers=WRITE)
    assert response.status_code == 413 and "4096" in response.json()["detail"]
    assert counts(client) == before
    long_text = client.post("/recommend", json={"text": "word " * 500})
    assert long_text.status_code == 422 and "text" in long_text.json()["detail"]
