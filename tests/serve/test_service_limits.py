"""No anonymous caller can stall the service (issue 13, findings 2 and 6): rate limits per client
and per key, a slow-down after wrong keys, a bounded encoder queue, body limits and deadlines,
header deadlines on a real server, and error answers the OpenAPI document describes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.testclient import TestClient
from limits import parse
from limits.strategies import MovingWindowRateLimiter
from servicekit import WRITE, counts, load_catalogue

from coldbrew.config.settings import Settings
from coldbrew.serve.guard import TimerlessMemory

LAMP = {"id": "x", "title": "Lamp"}


def test_anonymous_clients_are_rate_limited(open_client: Callable[..., TestClient]) -> None:
    client = open_client(rate_limit="5/minute", key_rate_limit="3/minute")
    statuses = [client.post("/recommend", json={"text": "tent"}).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    refused = client.post("/recommend", json={"text": "tent"})
    assert refused.status_code == 429 and "rate limit" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert client.get("/healthz").status_code == client.get("/readyz").status_code == 200
    # a valid key has its own budget, and inventing keys gains nothing
    keyed = [client.post("/recommend", json={"text": "t"}, headers=WRITE) for _ in range(4)]
    assert [r.status_code for r in keyed] == [200, 200, 200, 429]
    invented = client.post("/recommend", json={"text": "t"}, headers={"X-API-Key": "new-1"})
    assert invented.status_code == 429


def test_the_rate_limits_start_no_thread_per_request() -> None:
    storage = TimerlessMemory(expire_every=3600.0)
    limiter, limit = MovingWindowRateLimiter(storage), parse("3/minute")
    storage.timer.join(10)  # the one timer the base class starts at construction
    threads = threading.active_count()
    hits = [limiter.hit(limit, "client", "a") for _ in range(5)]
    assert hits == [True] * 3 + [False] * 2  # still a moving window of 3 a minute
    assert threading.active_count() == threads and not storage.timer.is_alive()
    storage.expire_every = 0.0
    gone = parse("2/second")  # entries that expire at once are swept at the next hit
    limiter.hit(gone, "client", "b")
    (b,) = [entries for key, entries in storage.events.items() if "/b/" in key]
    b[0].expiry = 0.0
    limiter.hit(limit, "client", "c")
    assert [entries for key, entries in storage.events.items() if "/b/" in key] == [[]]


def test_a_429_is_sent_after_a_pause(open_client: Callable[..., TestClient]) -> None:
    client = open_client(rate_limit="1/minute", rate_limit_delay=0.3)
    assert client.get("/openapi.json").status_code == 200
    start = time.perf_counter()
    assert client.get("/openapi.json").status_code == 429
    assert time.perf_counter() - start >= 0.3


def test_a_wrong_key_tried_again_is_slowed_down(open_client: Callable[..., TestClient]) -> None:
    client = open_client(failed_key_limit="3/minute")
    load_catalogue(client)
    stale = {"X-API-Key": "a-stale-key-0123456789"}
    tries = [client.post("/items", json=LAMP, headers=stale) for _ in range(5)]
    assert [t.status_code for t in tries] == [403, 403, 403, 429, 429]
    assert "wrong API key" in tries[-1].json()["detail"]
    assert 1 <= int(tries[-1].headers["retry-after"]) <= 60
    # the back-off is that key's alone: the right key, another wrong one and no key go on
    assert client.post("/items", json=LAMP, headers=WRITE).status_code == 200
    assert client.post("/items", json=LAMP, headers={"X-API-Key": "other"}).status_code == 403
    assert client.post("/recommend", json={"text": "tent"}).status_code == 200


def test_invented_keys_spend_the_address_budget(open_client: Callable[..., TestClient]) -> None:
    client = open_client(rate_limit="5/minute")
    invented = [
        client.post("/items", json=LAMP, headers={"X-API-Key": f"invented-{n}"}) for n in range(7)
    ]
    assert [i.status_code for i in invented] == [403] * 5 + [429] * 2
    assert client.post("/recommend", json={"text": "tent"}).status_code == 429  # keyless: spent
    assert client.post("/items", json=LAMP, headers=WRITE).status_code == 200  # its own budget


def test_a_full_encoder_queue_answers_503_at_once(open_client: Callable[..., TestClient]) -> None:
    client = open_client(max_queue=1)
    load_catalogue(client)
    lurker = {"user_id": "lurker", "item_id": "tent", "event": "click"}  # known by history alone
    assert client.post("/feedback", json=lurker, headers=WRITE).status_code == 200
    app: Any = client.app
    lock = app.state.engine.encoder._encoding  # hold the encoder, as a long encode would
    lock.acquire()
    first: dict[str, int] = {}
    waiting = threading.Thread(
        target=lambda: first.update(
            status=client.post("/recommend", json={"text": "camping tent"}).status_code
        )
    )
    try:
        waiting.start()
        deadline = time.monotonic() + 5
        while app.state.admission.inside < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        # answered while the encoder is still held: it did not queue behind the first request
        refused = client.post("/recommend", json={"text": "gaming mouse"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["detail"]
        # answers that need no encoder (a user known by their history) are not queued
        by_id = {"user_id": "lurker", "explain": False}
        assert client.post("/recommend", json=by_id, headers=WRITE).status_code == 200
    finally:
        lock.release()
        waiting.join(10)
    assert first["status"] == 200


def _chunks(size: int) -> Iterator[bytes]:
    yield b'{"items": ['
    for n in range(size):
        yield b'{"id": "c%d", "title": "chunked item"},' % n
    yield b'{"id": "last", "title": "t"}]}'


def test_a_chunked_body_over_the_limit_is_413(open_client: Callable[..., TestClient]) -> None:
    client = open_client(max_body_bytes=1000)
    before = counts(client)
    response = client.post(
        "/items/batch", content=_chunks(100), headers={**WRITE, "content-type": "application/json"}
    )
    assert response.status_code == 413 and "1000 bytes" in response.json()["detail"]
    assert counts(client) == before
    small = client.post(
        "/items/batch", content=_chunks(3), headers={**WRITE, "content-type": "application/json"}
    )
    assert small.status_code == 200, small.text


def test_duplicate_ids_in_a_batch_count_once(client: TestClient) -> None:
    before = counts(client)
    rows = [{"id": "twin", "title": "First"}, {"id": "twin", "title": "Second"}]
    response = client.post("/items/batch", json={"items": rows}, headers=WRITE)
    assert response.json() == {"written": 1}
    assert counts(client)["items"] == before["items"] + 1
    assert client.get("/items/twin").json()["title"] == "Second"
    inter = {"id": "dup", "user_id": "gamer", "item_id": "mouse"}
    both = client.post("/interactions/batch", json={"interactions": [inter, inter]}, headers=WRITE)
    assert both.json() == {"written": 1}
    users = client.post("/users/batch", json={"users": [{"id": "u"}, {"id": "u"}]}, headers=WRITE)
    assert users.json() == {"written": 1}


def test_wrong_methods_name_every_allowed_one(client: TestClient) -> None:
    response = client.post("/items/jacket")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert response.json() == {"detail": "Method Not Allowed"}
    assert client.put("/recommend").headers["allow"] == "POST"


def test_the_openapi_document_lists_every_error(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"413", "429", "503"} <= codes, (method, path)
            for code in {c for c in codes if not c.startswith("2")}:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema in (error, {"$ref": "#/components/schemas/ReadyOut"}), (path, code)
    assert {"401", "403", "404", "422"} <= set(paths["/users/{user_id}"]["get"]["responses"])
    assert {"401", "403", "404", "422"} <= set(paths["/recommend"]["post"]["responses"])


# ---- a real server: deadlines on headers and bodies ----------------------------------------
def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except TimeoutError:
        return False


def test_half_open_connections_are_closed(serve_live: Callable[..., str]) -> None:
    import httpx

    base = serve_live(header_timeout=0.5)
    silent = [_connect(base) for _ in range(30)]
    partial = [_connect(base) for _ in range(30)]
    for sock in partial:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    assert httpx.get(f"{base}/healthz").status_code == 200  # others are served meanwhile
    start = time.monotonic()
    assert all(_closed_within(sock, 3) for sock in silent + partial)
    assert time.monotonic() - start < 3
    for sock in silent + partial:
        sock.close()


def test_ten_wrong_keys_do_not_lock_out_a_right_key(serve_live: Callable[..., str]) -> None:
    """Issue 28, finding 7: ~10 wrong keys from one address gave every key there 429s."""
    import httpx

    base = serve_live()  # the default COLDBREW_FAILED_KEY_LIMIT: 10/minute
    assert Settings().failed_key_limit == "10/minute"
    with httpx.Client(base_url=base, timeout=10) as api:
        guesses = [
            api.post("/items", json=LAMP, headers={"X-API-Key": f"guess-{n}"}) for n in range(12)
        ]
        again = [api.post("/items", json=LAMP, headers={"X-API-Key": "guess-0"}) for _ in range(10)]
        assert [g.status_code for g in guesses] == [403] * 12  # the old lockout: 429 from the 11th
        assert [a.status_code for a in again] == [403] * 9 + [429]  # guess-0's 11th try
        assert api.post("/items", json=LAMP, headers=WRITE).status_code == 200
        assert api.get("/items/x", headers=WRITE).json()["title"] == "Lamp"


def test_a_slow_body_gets_408(serve_live: Callable[..., str]) -> None:
    base = serve_live(body_timeout=0.5)
    sock = _connect(base)
    sock.sendall(
        b"POST /recommend HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b'content-length: 100\r\n\r\n{"text": '
    )
    sock.settimeout(5)
    answer = sock.recv(4096)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"too slow" in answer


def test_allow_on_a_literal_path_names_its_own_methods(client: TestClient) -> None:
    assert client.get("/items/batch/x").status_code == 404
    assert client.put("/items/batch").headers["allow"] == "POST"
