"""Fair work per caller (issue 28): bounded writes per key and in all, reads before writes at
the encoder, and no encoding for rows that did not change."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from servicekit import CATALOGUE, USERS, WRITE, WRITE_KEY, load_catalogue, make_settings

from coldbrew.config.settings import Settings
from coldbrew.courtesy import PIECE, stepping_aside
from coldbrew.live.locks import ReadWriteLock
from coldbrew.serve import create_app
from coldbrew.serve.app import FULL_COLLECTION_EVERY
from coldbrew.serve.fair import ReadsInFlight, WritePace, _decoded, _validated
from coldbrew.serve.schemas import ItemBatch
from coldbrew.text import HashingEncoder
from coldbrew.text.encoder import TextKind
from coldbrew.text.memo import MemoEncoder

OTHER_KEY = "another-write-key"
NEW_ITEMS = [{"id": f"new{n}", "title": f"camping lamp no. {n}"} for n in range(40)]


def encoded(client: TestClient, kind: str) -> float:
    """The service's count of texts of ``kind`` run through the encoder (``/metrics``)."""
    text = client.get("/metrics").text
    found = re.search(rf'coldbrew_encoded_texts_total{{kind="{kind}"}} (\S+)', text)
    assert found is not None, "no coldbrew_encoded_texts metric"
    return float(found.group(1))


def test_a_reposted_unchanged_batch_encodes_nothing(client: TestClient) -> None:
    before = encoded(client, "passage")
    again = client.post("/items/batch", json={"items": CATALOGUE}, headers=WRITE)
    assert again.status_code == 200 and again.json()["written"] == len(CATALOGUE)
    assert encoded(client, "passage") == before
    assert client.post("/users/batch", json={"users": USERS}, headers=WRITE).status_code == 200
    changed = [{**CATALOGUE[0], "title": "Lightweight autumn jacket"}, *CATALOGUE[1:]]
    assert client.post("/items/batch", json={"items": changed}, headers=WRITE).status_code == 200
    assert encoded(client, "passage") == before + 1  # only the changed item
    found = client.get(f"/items/{CATALOGUE[0]['id']}").json()
    assert found["title"] == "Lightweight autumn jacket"


class Recording(HashingEncoder):
    """The tiny encoder, noting the kind and size of every call it gets."""

    def __init__(self) -> None:
        super().__init__(256)
        self.calls: list[tuple[str, int]] = []

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        self.calls.append((kind, len(texts)))
        return super().encode(texts, kind=kind, batch_size=batch_size)


@contextmanager
def opened(db_url: str, tmp_path: Any, encoder: HashingEncoder, **kwargs: Any) -> Iterator[Any]:
    """A loaded client whose app runs ``encoder``, with the settings ``kwargs``."""
    settings = make_settings(db_url, models_dir=str(tmp_path / "models"), **kwargs)
    with TestClient(create_app(settings, encoder=encoder)) as client:
        load_catalogue(client)
        yield client


@contextmanager
def encoder_held(client: TestClient) -> Iterator[Any]:
    """Hold the service's encoder, as one piece of a long write would; yield its lock."""
    lock = client.app.state.engine.encoder._encoding  # type: ignore[attr-defined]
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``call`` in a thread; its answer lands in the dict under ``response``."""
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(response=call()))
    thread.start()
    return thread, out


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@contextmanager
def a_write_in_flight(client: TestClient) -> Iterator[None]:
    """A batch of new items in flight (its slot taken, waiting for the held encoder) for the
    block; it must then succeed."""
    with encoder_held(client):
        writer, first = in_thread(
            lambda: client.post("/items/batch", json={"items": NEW_ITEMS}, headers=WRITE)
        )
        wait_for(lambda: client.app.state.writes.total == 1)  # type: ignore[attr-defined]
        yield
    writer.join(30)
    assert first["response"].status_code == 200


def test_a_full_write_queue_answers_503_with_retry_after(db_url: str, tmp_path: Any) -> None:
    with (
        opened(db_url, tmp_path, HashingEncoder(256), write_queue=1) as client,
        a_write_in_flight(client),
    ):
        refused = client.post("/users", json={"id": "u9", "text": "tea"}, headers=WRITE)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["detail"]
        assert client.get("/items/tent").status_code == 200  # reads take no write slot


def test_writes_in_flight_per_key_are_bounded(db_url: str, tmp_path: Any) -> None:
    keys = Settings.keys(WRITE_KEY, OTHER_KEY)
    encoder = HashingEncoder(256)
    other = {"X-API-Key": OTHER_KEY}
    with opened(db_url, tmp_path, encoder, key_writes=1, write_key_hashes=keys) as client:
        with a_write_in_flight(client):
            refused = client.post("/users", json={"id": "u9", "text": "tea"}, headers=WRITE)
            assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
            assert "1 writes in progress" in refused.json()["detail"]
            # another key is not refused: its write takes a slot and waits for the one write
            # thread (COLDBREW_WRITE_THREADS=1), in the order the writes came
            waiting, answered = in_thread(
                lambda: client.post("/users", json={"id": "u9"}, headers=other)
            )
            wait_for(lambda: client.app.state.writes.total == 2)  # type: ignore[attr-defined]
            assert "response" not in answered
        waiting.join(30)
    assert answered["response"].status_code == 200


def test_a_second_write_thread_lets_another_key_write_beside_a_held_one(
    db_url: str, tmp_path: Any
) -> None:
    keys = Settings.keys(WRITE_KEY, OTHER_KEY)
    settings = {"key_writes": 1, "write_key_hashes": keys, "write_threads": 2}
    with (
        opened(db_url, tmp_path, HashingEncoder(256), **settings) as client,
        a_write_in_flight(client),
    ):
        other = {"X-API-Key": OTHER_KEY}
        assert client.post("/users", json={"id": "u9"}, headers=other).status_code == 200


def test_reads_go_before_a_writes_remaining_encoding(db_url: str, tmp_path: Any) -> None:
    encoder = Recording()
    with opened(db_url, tmp_path, encoder, write_chunk=10) as client:
        lurker = {"user_id": "lurker", "item_id": "tent", "event": "click"}
        assert client.post("/feedback", json=lurker, headers=WRITE).status_code == 200
        encoder.calls.clear()
        with encoder_held(client) as lock:
            writer, written = in_thread(
                lambda: client.post("/items/batch", json={"items": NEW_ITEMS}, headers=WRITE)
            )
            wait_for(lambda: lock.waiting == 1)
            # a read from stored vectors answers while the write waits
            by_id = {"user_id": "lurker", "explain": False}
            assert client.post("/recommend", json=by_id, headers=WRITE).status_code == 200
            reader, read = in_thread(
                lambda: client.post("/recommend", json={"text": "a reading lamp"})
            )
            wait_for(lambda: lock.waiting == 2)
        writer.join(30)
        reader.join(30)
    assert read["response"].status_code == 200 and written["response"].status_code == 200
    # the query first, then the write's 40 texts in pieces of at most 10
    assert encoder.calls[0] == ("query", 1)
    pieces = [n for kind, n in encoder.calls[1:] if kind == "passage"]
    assert len(pieces) == len(encoder.calls) - 1 > 1
    assert sum(pieces) == len(NEW_ITEMS) and max(pieces) <= 10


def test_readers_waiting_when_a_write_ends_go_before_the_next_writer() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    held, release = threading.Event(), threading.Event()

    def first_write() -> None:
        with lock.write():
            held.set()
            release.wait(10)

    def read() -> None:
        with lock.read():
            order.append("read")

    def second_write() -> None:
        with lock.write():
            order.append("write")

    threads = [threading.Thread(target=first_write)]
    threads[0].start()
    held.wait(10)
    threads.append(threading.Thread(target=read))
    threads[-1].start()
    wait_for(lambda: lock._readers_waiting == 1)
    threads.append(threading.Thread(target=second_write))
    threads[-1].start()
    wait_for(lambda: lock._writers_waiting == 1)
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["read", "write"]  # back-to-back writes no longer starve the reader


def test_writes_rest_only_while_reads_are_served() -> None:
    pace = WritePace(share=0.5)
    pace.done(30.0)  # no reads lately: bulk writes run back to back
    assert pace.rest_until == 0.0
    pace.last_read = time.monotonic()
    pace.done(30.0)  # with reads: a write of 30 s owes 30 s of rest at half the time
    assert pace.rest_until - time.monotonic() > 29


def test_a_read_counts_as_in_flight_from_the_outermost_layer(client: TestClient) -> None:
    app = client.app
    assert app.user_middleware[0].cls is ReadsInFlight  # type: ignore[attr-defined]
    pace = WritePace(share=0.5)
    seen: list[int] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(pace.reads_in_flight)

    counted = ReadsInFlight(inner, pace)
    for method, path in [("POST", "/recommend"), ("GET", "/items/x"), ("POST", "/items/batch")]:
        asyncio.run(counted({"type": "http", "method": method, "path": path}, None, None))
    assert seen == [1, 1, 0]  # the write is WriteGate's, never a read
    assert pace.reads_in_flight == 0 and pace.reading()


def test_a_write_steps_aside_while_reads_are_in_flight_but_never_for_ever() -> None:
    pace = WritePace(share=0.5, longest_pause=30.0)
    pace.step_aside()  # no read in flight: returns at once (else this test would hang 30 s)
    pace.reads_in_flight = 1
    writer = threading.Thread(target=pace.step_aside)
    writer.start()
    writer.join(0.3)
    assert writer.is_alive()  # waiting for the read
    pace.reads_in_flight = 0
    writer.join(10)
    assert not writer.is_alive()  # the read was answered: the write goes on
    bounded = WritePace(share=0.5, longest_pause=0.05)
    bounded.reads_in_flight = 1  # a read that never ends
    stubborn = threading.Thread(target=bounded.step_aside)
    stubborn.start()
    stubborn.join(10)
    assert not stubborn.is_alive()


def test_a_batch_pauses_for_reads_between_pieces_of_its_rows() -> None:
    rows = [{"id": f"i{n}", "title": f"lamp {n}"} for n in range(100)]
    calls: list[int] = []
    raw = json.dumps({"items": rows}).encode()
    assert isinstance(_validated(ItemBatch, None, raw), ItemBatch)  # outside the service
    with stepping_aside(lambda: calls.append(1)):
        batch = _validated(ItemBatch, None, raw)
    assert isinstance(batch, ItemBatch) and [i.id for i in batch.items] == [r["id"] for r in rows]
    assert len(calls) == 2 * -(-len(rows) // PIECE)  # decoding and validating, a piece each


def test_a_batch_write_steps_aside_in_every_layer_and_is_stored_whole(
    db_url: str, tmp_path: Any
) -> None:
    """Decoding, validating, comparing with the stored rows and the ORM's flush each pause
    once a piece; the batch is still written all at once, in one transaction."""
    users = [{"id": f"pause{n}", "text": f"reads first {n}"} for n in range(100)]
    with opened(db_url, tmp_path, HashingEncoder(256)) as client:
        calls: list[int] = []
        client.app.state.pace.step_aside = lambda: calls.append(1)  # type: ignore[attr-defined]
        answer = client.post("/users/batch", json={"users": users}, headers=WRITE)
        assert answer.status_code == 200 and answer.json()["written"] == len(users)
        pieces = -(-len(users) // PIECE)
        # decode, validate and compare: a pause each piece; the flush: between pieces
        assert len(calls) >= 3 * pieces + (pieces - 1), len(calls)
        for user in (users[0], users[50], users[-1]):
            stored = client.get(f"/users/{user['id']}", headers=WRITE)
            assert stored.status_code == 200 and stored.json()["text"] == user["text"]


def test_a_writes_encoding_steps_aside_before_each_piece_and_a_query_never_does() -> None:
    memo = MemoEncoder(HashingEncoder(64), chunk=4)
    calls: list[int] = []
    with stepping_aside(lambda: calls.append(1)):
        vectors = memo.encode([f"lamp no. {n}" for n in range(10)], kind="passage")
        assert vectors.shape == (10, 64) and len(calls) >= 3  # pieces of at most 4 texts
        before = len(calls)
        memo.encode(["a user's own words"], kind="query")  # a read: it goes first, never waits
        assert len(calls) == before


def test_start_ups_heap_is_frozen_out_of_the_collector(
    open_client: Callable[..., TestClient],
) -> None:
    before = gc.get_threshold()
    client = open_client()
    assert gc.get_freeze_count() > 0  # while the service runs
    assert gc.get_threshold() == (*before[:2], FULL_COLLECTION_EVERY)  # full ones rarer
    client.__exit__(None, None, None)
    assert gc.get_threshold() == before  # given back at shutdown


BODIES = [
    '{"items": [{"id": "a", "title": "x"}, {"id": "b", "title": "y", "attributes": {"n": 1.5}}]}',
    ' \n{ "items" :\t[ ] , "items" : [ {"id":"c"} ] }\r\n',  # spaces; a repeated key: last wins
    "{}",
    '{"users": [1, "two", [3], {"four": null}, true, NaN, -Infinity, 1e400]}',
    '[{"id": "a"}]',
    '"just a string"',
    '{"text": "caf\\u00e9 \\ud83d\\ude00", "k": 10, "liked": ["a", "b"]}',
]
BROKEN = [
    '{"items": [{"id": "a"},]}',
    '{"items": [{"id": "a"}] "x": 1}',
    '{"items": [{"id": "a"}]} extra',
    '{"items": [{"id": "a"}]',
    "{1: 2}",
    '{"a" 1}',
    "",
]


def test_a_body_is_decoded_row_by_row_exactly_as_json_loads_decodes_it() -> None:
    """Write bodies are decoded a list element at a time (so the GIL is never held long), and
    must read every JSON text exactly as ``json.loads`` does, refusing what it refuses."""
    for body in BODIES:
        expected = json.loads(body)
        assert _decoded(body.encode()) == expected or (
            body.count("NaN") and repr(_decoded(body.encode())) == repr(expected)
        ), body
    for body in BROKEN:
        try:
            json.loads(body)
        except ValueError:
            pass
        else:
            raise AssertionError(f"json.loads takes {body!r}: not a broken body")
        try:
            _decoded(body.encode())
        except ValueError:
            continue
        raise AssertionError(f"{body!r} was decoded")


def test_a_batch_with_a_bad_row_is_refused_with_the_rows_place(client: TestClient) -> None:
    rows = [{"id": f"r{n}", "title": f"lamp {n}"} for n in range(5)]
    rows[3]["colour"] = "red"
    rows[4]["title"] = 7
    answer = client.post("/items/batch", json={"items": rows}, headers=WRITE)
    assert answer.status_code == 422
    errors = {(e["index"], e["field"]) for e in answer.json()["errors"]}
    assert errors == {(3, "items.3.colour"), (4, "items.4.title")}, answer.json()
    assert client.get("/items/r0", headers=WRITE).status_code == 404  # all or none
    not_json = client.post(
        "/items/batch",
        content=b'{"items": [',
        headers={**WRITE, "content-type": "application/json"},
    )
    assert not_json.status_code == 422 and "json" in not_json.text.lower()
