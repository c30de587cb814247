"""Context on requests and events over HTTP (issue 26), on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE, counts, load_catalogue
from sqlalchemy import text

from coldbrew.data.schema import CONTEXT
from coldbrew.live.records import dataset_from_records
from coldbrew.models.contextual import ContextPopularityRecommender
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.store import Interaction, Item
from coldbrew.text import HashingEncoder

SENT = {"time": "2011-06-04T09:30:00", "location": "France", "mood": "festive"}


def test_recommend_takes_a_context(module_client: TestClient) -> None:
    answer = module_client.post("/recommend", json={"text": "tent", "context": SENT})
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"]
    alone = module_client.post("/recommend", json={"context": {"time": 1307179800}})
    assert alone.status_code == 200, alone.text  # a context alone describes a new user


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"time": "yesterday"}, "context.time"),
        ({"device": ["a"]}, "context"),
        ({"location": "x" * 201}, "context.location"),
        ({f"k{n}": n for n in range(21)}, "context"),
    ],
)
def test_a_bad_context_is_422_naming_the_field(
    module_client: TestClient, context: dict[str, Any], message: str
) -> None:
    event = {"user_id": "gamer", "item_id": "mouse", "context": context}
    for path, body in (
        ("/recommend", {"text": "tent", "context": context}),
        ("/interactions", event),
        ("/feedback", {**event, "event": "like"}),
    ):
        before = counts(module_client)
        response = module_client.post(path, json=body, headers=WRITE)
        assert response.status_code == 422, response.text
        assert message in response.text and "context" in response.json()["detail"]
        assert counts(module_client) == before


def test_a_batch_answers_each_query_in_its_own_context_in_order(
    module_client: TestClient,
) -> None:
    queries = [
        {"text": "tent", "context": SENT, "k": 3},
        {"context": {"time": 1307179800}, "k": 2},
        {"user_id": "hiker", "text": "warm", "diversity": 1.0, "k": 3},
    ]
    batch = module_client.post("/recommend/batch", json={"queries": queries}, headers=WRITE)
    assert batch.status_code == 200, batch.text
    singles = [module_client.post("/recommend", json=q, headers=WRITE).json() for q in queries]
    assert batch.json()["results"] == singles
    assert [len(r["items"]) for r in batch.json()["results"]] == [3, 2, 3]


@pytest.mark.parametrize(
    ("queries", "headers", "status", "message"),
    [
        ([{"text": "tent"}, {"user_id": "nobody"}], WRITE, 404, "queries[1]: user 'nobody'"),
        ([{"user_id": "hiker"}], {}, 401, "queries[0]: recommending for a stored user_id"),
        ([{"text": "tent"}, {"text": "a"}, {}], {}, 422, "queries[2]: describe the user"),
        ([{"text": "tent"}, {"context": {"time": "yesterday"}}], {}, 422, "queries.1.context"),
        ([{"text": "tent"}] * 33, {}, 422, "at most 32"),
        ([], {}, 422, "at least 1"),
    ],
)
def test_a_batch_that_cannot_be_answered_says_which_query(
    module_client: TestClient,
    queries: list[dict[str, Any]],
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = module_client.post("/recommend/batch", json={"queries": queries}, headers=headers)
    assert response.status_code == status, response.text
    assert message in response.text


def _engine(client: TestClient) -> Any:
    return client.app.state.engine  # type: ignore[attr-defined]


def _stored_contexts(client: TestClient, user_id: str) -> dict[str, Any]:
    return {i.item_id: i.context for i in _engine(client).store.interactions(user_id)}


def test_events_keep_their_context_and_forget_removes_it(
    open_client: Callable[..., TestClient],
) -> None:
    client = open_client()
    load_catalogue(client)
    one = {"id": "c1", "user_id": "hiker", "item_id": "tent", "event": "like", "context": SENT}
    assert client.post("/interactions", json=one, headers=WRITE).status_code == 200
    like = {"user_id": "hiker", "item_id": "jacket", "event": "like", "context": {"time": 7.5}}
    assert client.post("/feedback", json=like, headers=WRITE).status_code == 200
    expected = {"tent": SENT, "jacket": {"time": 7.5}, "boots": None}
    assert _stored_contexts(client, "hiker") == expected
    client.__exit__(None, None, None)
    client = open_client()  # a restart reads them back, into the users' histories too
    assert _stored_contexts(client, "hiker") == expected
    _, history = _engine(client).get_user("hiker")
    assert {i.item_id: i.context for i in history} == expected
    assert client.delete("/users/hiker", headers=WRITE).status_code == 200
    assert _stored_contexts(client, "hiker") == {}
    with _engine(client).store.engine.connect() as connection:
        rows = connection.execute(text("SELECT context FROM interactions")).scalars().all()
    assert not [r for r in rows if r and "France" in str(r)]


def test_the_service_learns_from_its_events_contexts() -> None:
    """A refit's dataset keeps each positive event's context (``None`` where it had none)."""
    events = [
        Interaction("a", "u", "tent", "like", 1.0, None, {"location": "France"}),
        Interaction("b", "u", "boots", "dislike", 2.0, None, {"location": "UK"}),
        Interaction("c", "v", "tent", "purchase", 3.0),
    ]
    dataset = dataset_from_records([Item("tent", "Tent"), Item("boots", "Boots")], [], events)
    assert list(dataset.interactions[CONTEXT]) == [{"location": "France"}, None]
    plain = dataset_from_records([Item("tent", "Tent")], [], events[2:])
    assert CONTEXT not in plain.interactions


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_context_written_through_one_replica_reaches_the_other(
    open_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    a = open_client(refit_every=0, refit_minutes=0, models_dir=str(tmp_path / "a"))
    b = open_client(refit_every=0, refit_minutes=0, models_dir=str(tmp_path / "b"))
    load_catalogue(a)
    like = {"user_id": "gamer", "item_id": "mouse", "event": "like", "context": SENT}
    assert a.post("/feedback", json=like, headers=WRITE).status_code == 200

    def arrived() -> bool:
        found = _engine(b).users.get("gamer")
        return found is not None and SENT in [i.context for i in found.history()]

    deadline = time.monotonic() + 5
    while not arrived() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert arrived()


SATURDAY_MORNING = "2011-06-04T09:30:00"
WEEKDAY_EVENING = "2011-06-07T20:15:00"


def _sales() -> list[dict[str, Any]]:
    """Croissants sell in France on Saturday mornings, tea in the UK on weekday evenings; the
    umbrella sells most of all, everywhere and at any hour."""
    rows = []
    for n in range(8):
        rows.append(("fr", n, "croissant", {"time": SATURDAY_MORNING, "location": "France"}))
        rows.append(("uk", n, "tea", {"time": WEEKDAY_EVENING, "location": "UK"}))
    for n in range(12):
        when = SATURDAY_MORNING if n % 2 else WEEKDAY_EVENING
        rows.append(("any", n, "umbrella", {"time": when, "location": "France" if n % 3 else "UK"}))
    return [
        {"id": f"{who}{n}-{item}", "user_id": f"{who}{n}", "item_id": item, "event": "purchase",
         "timestamp": float(i), "context": context}
        for i, (who, n, item, context) in enumerate(rows)
    ]  # fmt: skip


def test_the_answer_changes_with_the_requests_context(
    open_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """Events stored with their context teach a context-conditioned model; served, it answers a
    known user in France on a Saturday morning otherwise than in the UK on a weekday evening,
    in the direction the sales say, and names the context that decided."""
    client = open_client(model="zeroshot")
    items = [{"id": i, "title": i.title()} for i in ("croissant", "tea", "umbrella", "map")]
    for path, key, rows in (("/items/batch", "items", items), ("/users/batch", "users", [
            {"id": "shopper"}]), ("/interactions/batch", "interactions", _sales())):  # fmt: skip
        assert client.post(path, json={key: rows}, headers=WRITE).status_code == 200
    store = _engine(client).store
    dataset = dataset_from_records(store.items(), store.users(), store.interactions())
    ContextPopularityRecommender().fit(dataset).save(tmp_path / "by-context")
    client.__exit__(None, None, None)
    client = open_client(model=str(tmp_path / "by-context"))

    def top(context: dict[str, Any]) -> dict[str, Any]:
        body = {"user_id": "shopper", "context": context, "k": 2}
        response = client.post("/recommend", json=body, headers=WRITE)
        assert response.status_code == 200, response.text
        first: dict[str, Any] = response.json()["items"][0]
        return first

    assert top({"device": "mobile"})["item_id"] == "umbrella"  # nothing learned for it
    france = top({"time": SATURDAY_MORNING, "location": "France"})
    assert france["item_id"] == "croissant"
    assert france["explanation"]["text"] == "Popular on Saturday mornings in France."
    assert top({"time": "2011-06-08T19:00:00", "location": "UK"})["item_id"] == "tea"


def test_a_refit_is_judged_in_each_held_out_events_context() -> None:
    from coldbrew.live.judge import holdout_queries

    events = [
        Interaction("a", "u", "tent", "like", 1.0),
        Interaction("b", "u", "boots", "like", 2.0, None, {"location": "France"}),
    ]
    holdout = holdout_queries(events, events[1:], {})
    assert [(q.liked, dict(q.context)) for q in holdout.queries] == [
        (("tent",), {"location": "France"})
    ]


def test_a_language_model_reading_context_answers_and_explains_in_it(
    open_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """A language model with a context weight, served, ranks what the context's words name
    first and says so, quoting the context it was asked in."""
    client = open_client(model="zeroshot")
    items = [{"id": i, "title": t} for i, t in (("umbrella", "Rain umbrella"), ("hat", "Sun hat"),
             ("coat", "Winter coat"))]  # fmt: skip
    assert client.post("/items/batch", json={"items": items}, headers=WRITE).status_code == 200
    store = _engine(client).store
    dataset = dataset_from_records(store.items(), store.users(), store.interactions())
    model = ZeroShotRecommender(HashingEncoder(256), context_weight=1.0).fit(dataset)
    model.save(tmp_path / "reads-context")
    client.__exit__(None, None, None)
    client = open_client(model=str(tmp_path / "reads-context"))
    body = {"context": {"text": "rain all day", "location": "France"}, "k": 3}
    answer = client.post("/recommend", json=body)
    assert answer.status_code == 200, answer.text
    first = answer.json()["items"][0]
    assert first["item_id"] == "umbrella"
    assert first["explanation"]["text"] == (
        "Close in meaning to your context: rain all day, in France."
    )
