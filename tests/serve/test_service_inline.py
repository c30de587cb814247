"""Requests from stored vectors run on the event loop; they never wait there for a write."""

from __future__ import annotations

import threading
import time

import numpy as np
from fastapi.testclient import TestClient
from servicekit import WRITE

from coldbrew.index import ExactIndex
from coldbrew.live.answers import Query
from coldbrew.live.locks import ReadWriteLock
from coldbrew.models.query import UserQuery


def test_try_read_never_waits_for_a_writer() -> None:
    lock = ReadWriteLock()
    with lock.try_read() as free:
        assert free
        with lock.try_read() as again:  # readers share
            assert again
    held, release = threading.Event(), threading.Event()

    def write() -> None:
        with lock.write():
            held.set()
            release.wait(5)

    writer = threading.Thread(target=write)
    writer.start()
    held.wait(5)
    with lock.try_read() as free:
        assert not free
    release.set()
    writer.join(5)
    with lock.try_read() as free:
        assert free


def test_only_stored_vector_queries_on_a_quick_index_are_answered_at_once(
    client: TestClient,
) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    lurker = {"user_id": "lurker", "item_id": "tent", "event": "click"}
    assert client.post("/feedback", json=lurker, headers=WRITE).status_code == 200
    by_id = Query(UserQuery(user_id="lurker"), k=3, explain=False)  # known by their history alone
    now = engine.recommend_now(by_id)
    assert now is not None
    assert [r.item.item_id for r in now] == [r.item.item_id for r in engine.recommend(by_id)]
    assert (
        engine.recommend_now(Query(UserQuery(liked=("keyboard",)), k=2, explain=False)) is not None
    )
    for slow in (
        Query(UserQuery(text="a tent"), explain=False),  # runs the encoder
        Query(UserQuery(attributes={"age": "25-34"}), explain=False),
        Query(UserQuery(user_id="hiker"), explain=False),  # their own words and attributes: encoded
        Query(UserQuery(user_id="lurker")),  # explanations (the default) read every part
        Query(UserQuery(user_id="hiker"), explain=False, filters={"category": ["books"]}),
        Query(UserQuery(user_id="hiker"), explain=False, allowed_ids=("tent",)),
    ):
        assert engine.recommend_now(slow) is None


def test_an_exact_index_is_quick_only_while_small() -> None:
    index = ExactIndex(4)
    index.add([f"i{n}" for n in range(10)], np.eye(4, dtype=np.float32)[np.arange(10) % 4])
    assert index.quick
    index.QUICK_SCAN_ROWS = 5
    assert not index.quick


def test_health_answers_while_a_write_holds_the_lock_and_by_id_waits(client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    held, release = threading.Event(), threading.Event()

    def write() -> None:
        with engine.lock.write():
            held.set()
            release.wait(10)

    writer = threading.Thread(target=write)
    writer.start()
    assert held.wait(5)
    answers: dict[str, int] = {}

    def by_id() -> None:
        body = {"user_id": "hiker", "k": 3, "explain": False}
        answers["recommend"] = client.post("/recommend", json=body, headers=WRITE).status_code

    reader = threading.Thread(target=by_id)
    reader.start()
    time.sleep(0.2)  # the by-id request is in flight, waiting for the write
    health = threading.Thread(
        target=lambda: answers.update(health=client.get("/healthz").status_code)
    )
    health.start()
    health.join(5)
    assert answers.get("health") == 200  # the event loop was not blocked by the waiting reader
    assert "recommend" not in answers  # the reader still waits for the writer
    release.set()
    writer.join(5)
    reader.join(5)
    assert answers["recommend"] == 200
