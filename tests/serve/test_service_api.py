"""The HTTP API end to end, on SQLite and on PostgreSQL (the ``db_url`` fixture runs both)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import CATALOGUE, WRITE, counts, load_catalogue


def recommend(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    """Recommend; a stored ``user_id`` is named with the write key (it needs a key)."""
    response = client.post("/recommend", json=body, headers=WRITE if "user_id" in body else {})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def ids(client: TestClient, **body: Any) -> list[str]:
    return [r["item_id"] for r in recommend(client, **body)]


def test_free_text_finds_the_matching_item_and_explains_it(client: TestClient) -> None:
    recs = recommend(client, text="a light jacket for spring", k=3)
    assert recs[0]["item_id"] == "jacket"
    explanation = recs[0]["explanation"]
    assert "jacket" in [w["word"] for w in explanation["words"]]
    assert "jacket" in explanation["text"]
    assert explanation["parts"]["text"] == pytest.approx(recs[0]["score"], abs=1e-3)


def test_chinese_text_finds_the_chinese_item(client: TestClient) -> None:
    assert ids(client, text="想找一本好看的科幻小说", k=1) == ["scifi"]


def test_every_mode_and_their_mix(client: TestClient) -> None:
    assert ids(client, liked=["keyboard"], k=1) == ["mouse"]
    assert "keyboard" not in ids(client, liked=["keyboard"], k=5)
    assert ids(client, attributes={"hobby": "camping tent"}, k=1) == ["tent"]
    assert ids(client, user_id="hiker", k=1, exclude_seen=True)[0] in {"tent", "boots"}
    assert "boots" not in ids(client, user_id="hiker", k=8)
    assert "boots" in ids(client, user_id="hiker", k=8, exclude_seen=False)
    mixed = recommend(client, user_id="gamer", text="wireless mouse", liked=["skillet"], k=3)
    assert mixed[0]["item_id"] == "mouse"
    assert set(mixed[0]["explanation"]["parts"]) >= {"text", "attributes", "liked"}
    assert sum(mixed[0]["explanation"]["parts"].values()) == pytest.approx(
        mixed[0]["score"], abs=1e-3
    )
    assert mixed[0]["explanation"]["liked"][0]["item_id"] in {"keyboard", "skillet"}


def test_k_filters_allowed_and_excluded(client: TestClient) -> None:
    assert len(ids(client, text="gear", k=2)) == 2
    books = ids(client, text="a good read", filters={"category": ["books"]}, k=5)
    assert sorted(books) == ["cookbook", "scifi"]
    assert ids(client, text="jacket", allowed_ids=["parka", "tent"], k=5)[0] == "parka"
    assert "jacket" not in ids(client, text="jacket", excluded_ids=["jacket"], k=9)


def test_upsert_is_idempotent_and_a_changed_item_is_searchable_at_once(
    client: TestClient,
) -> None:
    before = counts(client)
    load_catalogue(client)
    assert counts(client) == before
    changed = {**CATALOGUE[6], "title": "Espresso machine", "description": "Barista coffee maker"}
    assert client.post("/items", json=changed, headers=WRITE).status_code == 200
    assert ids(client, text="espresso coffee", k=1) == ["skillet"]
    assert client.get("/items/skillet").json()["title"] == "Espresso machine"


def test_new_item_is_recommendable_when_upsert_returns(client: TestClient) -> None:
    new = {"id": "kayak", "title": "Inflatable kayak", "description": "Kayak for lake paddling"}
    assert client.post("/items", json=new, headers=WRITE).status_code == 200
    assert ids(client, text="paddling a kayak on the lake", k=1) == ["kayak"]


def test_delete_takes_effect_at_once(client: TestClient) -> None:
    assert client.delete("/items/jacket", headers=WRITE).status_code == 200
    assert "jacket" not in ids(client, text="spring jacket", k=9)
    missing = client.get("/items/jacket")
    assert missing.status_code == 404 and "jacket" in missing.json()["detail"]
    assert client.delete("/items/jacket", headers=WRITE).status_code == 404


def test_feedback_changes_the_next_answer(client: TestClient) -> None:
    body = {"text": "something warm", "k": 3}
    first = recommend(client, **body)
    for item in ("keyboard", "mouse"):
        response = client.post(
            "/feedback", json={"user_id": "newbie", "item_id": item, "event": "like"}, headers=WRITE
        )
        assert response.status_code == 200, response.text
    # the user exists now (feedback created them) and their vector moved towards gaming
    after = recommend(client, user_id="newbie", k=9, exclude_seen=False)
    assert [r["item_id"] for r in after[:2]] != [r["item_id"] for r in first[:2]]
    assert {r["item_id"] for r in after[:2]} == {"keyboard", "mouse"}
    disliked = {"user_id": "newbie", "item_id": "parka", "event": "dislike"}
    before_score = {r["item_id"]: r["score"] for r in after}["parka"]
    assert client.post("/feedback", json=disliked, headers=WRITE).status_code == 200
    again = recommend(client, user_id="newbie", k=9, exclude_seen=False)
    assert {r["item_id"]: r["score"] for r in again}["parka"] < before_score


def test_forget_user_removes_everything(client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    assert client.get("/users/hiker", headers=WRITE).json()["interactions"] == 1
    assert client.delete("/users/hiker", headers=WRITE).status_code == 200
    assert client.get("/users/hiker", headers=WRITE).status_code == 404
    assert all(i.user_id != "hiker" for i in engine.store.interactions())
    for kind in ("user", "user_text", "user_attributes"):
        assert "hiker" not in engine.store.vectors(kind, engine.encoder_name)
    assert "hiker" not in [u.user_id for u in engine.store.users()]
    response = client.post("/recommend", json={"user_id": "hiker"}, headers=WRITE)
    assert response.status_code == 404 and "hiker" in response.json()["detail"]


def test_similar_items(client: TestClient) -> None:
    response = client.get("/items/keyboard/similar", params={"k": 2})
    assert response.status_code == 200
    items = response.json()["items"]
    assert items[0]["item_id"] == "mouse"
    assert "gaming" in items[0]["explanation"]["text"]


def test_interactions_single_and_delete(client: TestClient) -> None:
    one = {"id": "x1", "user_id": "gamer", "item_id": "mouse", "event": "click"}
    assert client.post("/interactions", json=one, headers=WRITE).status_code == 200
    assert client.get("/users/gamer", headers=WRITE).json()["interactions"] == 2
    assert client.delete("/interactions/x1", headers=WRITE).status_code == 200
    assert client.get("/users/gamer", headers=WRITE).json()["interactions"] == 1
    assert client.delete("/interactions/x1", headers=WRITE).status_code == 404


def test_restart_rebuilds_identical_answers(open_client: Callable[..., TestClient]) -> None:
    first = open_client()
    load_catalogue(first)
    for item in ("tent", "mouse"):
        feedback = {"user_id": "gamer", "item_id": item, "event": "like"}
        assert first.post("/feedback", json=feedback, headers=WRITE).status_code == 200
    first.delete("/items/parka", headers=WRITE)
    queries: list[dict[str, Any]] = [
        {"user_id": "gamer", "k": 9},
        {"user_id": "hiker", "k": 9, "explain": False},
        {"text": "warm clothes for winter", "k": 9},
        {"liked": ["boots", "tent"], "attributes": {"age": "25-34"}, "k": 9},
    ]
    before = [recommend(first, **q) for q in queries]
    first.__exit__(None, None, None)
    second = open_client()
    after = [recommend(second, **q) for q in queries]
    assert after == before
    assert second.get("/readyz").json()["items"] == len(CATALOGUE) - 1


def test_changed_and_deleted_items_reach_the_users_who_liked_them(client: TestClient) -> None:
    fan = {"user_id": "fan", "item_id": "skillet", "event": "like"}
    assert client.post("/feedback", json=fan, headers=WRITE).status_code == 200
    changed = {"id": "skillet", "title": "Wireless gaming headset", "description": "For gamers"}
    assert client.post("/items", json=changed, headers=WRITE).status_code == 200
    fast = recommend(client, user_id="fan", k=4, explain=False)
    explained = recommend(client, user_id="fan", k=4)
    # the stored vector follows the item's new text: same answer with or without explanations
    assert [(r["item_id"], r["score"]) for r in fast] == [
        (r["item_id"], r["score"]) for r in explained
    ]
    assert fast[0]["item_id"] in {"mouse", "keyboard"}
    assert client.delete("/items/skillet", headers=WRITE).status_code == 200
    for explain in (False, True):
        body = {"user_id": "fan", "explain": explain}
        response = client.post("/recommend", json=body, headers=WRITE)
        assert response.status_code == 422, response.text
        assert "nothing is known about this user" in response.json()["detail"]


def test_unknown_ids_give_404_naming_the_id(client: TestClient) -> None:
    cases = [
        client.post("/recommend", json={"user_id": "ghost"}, headers=WRITE),
        client.post("/recommend", json={"liked": ["no-such-item"]}),
        client.get("/items/no-such-item/similar"),
        client.delete("/users/ghost", headers=WRITE),
        client.post(
            "/feedback",
            json={"user_id": "gamer", "item_id": "no-such-item", "event": "like"},
            headers=WRITE,
        ),
    ]
    for response, name in zip(cases, ["ghost", "no-such-item", "no-such-item", "ghost", "no-such"]):
        assert response.status_code == 404
        assert name in response.json()["detail"]


def test_ops_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["items"] == len(CATALOGUE)
    recommend(client, text="tent")
    metrics = client.get("/metrics").text
    assert 'coldbrew_requests_total{method="POST",route="/recommend",status="200"}' in metrics
    assert f"coldbrew_index_items {float(len(CATALOGUE))}" in metrics
    assert "coldbrew_request_seconds_bucket" in metrics
    assert "/recommend" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_user_text_never_reaches_the_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "my secret diagnosis is zebra-measles"
    with caplog.at_level(logging.DEBUG):
        recommend(client, text=secret)
        client.post("/users", json={"id": "p", "text": secret}, headers=WRITE)
        client.post("/recommend", json={"text": secret * 500})
    assert caplog.records, "the service logs requests"
    assert not any("zebra" in r.getMessage() for r in caplog.records)


def test_searches_run_alongside_writes(client: TestClient) -> None:
    """Reads share the engine (readers-writer lock) while upserts go on; nothing fails."""
    statuses: list[int] = []

    def reader() -> None:
        for n in range(25):
            body = {"text": f"camping gear {n}", "k": 3} if n % 2 else {"user_id": "hiker"}
            response = client.post("/recommend", json=body, headers=WRITE)
            statuses.append(response.status_code)

    def writer() -> None:
        for n in range(15):
            item = {"id": f"c{n}", "title": f"Camping stove model {n}"}
            statuses.append(client.post("/items", json=item, headers=WRITE).status_code)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=writer)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == len(statuses) == 3 * 25 + 15
    assert all(client.get(f"/items/c{n}").status_code == 200 for n in range(15))
    assert client.get("/readyz").json()["items"] == len(CATALOGUE) + 15
