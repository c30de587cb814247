"""Write threads (issue 28): a write's work runs in threads the OS schedules after the reads."""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import threading
import time
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from servicekit import USERS, WRITE, make_settings

from coldbrew.serve import create_app
from coldbrew.serve.fair import ParsedOffLoop, WriteGate, WritePace, WriteSlots
from coldbrew.serve.writethreads import WriteThreads
from coldbrew.text import HashingEncoder

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice")


def where() -> dict[str, Any]:
    """The calling thread's name and OS nice value."""
    me = threading.get_native_id()
    return {"thread": threading.current_thread().name, "nice": os.getpriority(os.PRIO_PROCESS, me)}


@LINUX
def test_work_runs_in_a_thread_below_the_services_priority() -> None:
    threads = WriteThreads(2, niceness=10)
    try:
        ran = asyncio.run(threads.run(where))
    finally:
        threads.close()
    assert ran["thread"].startswith("coldbrew-write")
    assert ran["nice"] == min(19, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + 10)
    assert threads.lowered == 1


def test_niceness_zero_keeps_the_services_priority() -> None:
    threads = WriteThreads(1, niceness=0)
    try:
        ran = asyncio.run(threads.run(where))
    finally:
        threads.close()
    assert ran["nice"] == os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert threads.lowered == 0


def test_the_work_sees_the_callers_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def call() -> str:
        var.set("the caller's")
        return await threads.run(var.get)

    threads = WriteThreads(1, niceness=0)
    try:
        assert asyncio.run(call()) == "the caller's"
    finally:
        threads.close()


def test_a_cancelled_caller_waits_for_its_work_to_end() -> None:
    ended: list[float] = []

    def work() -> None:
        time.sleep(0.3)
        ended.append(time.monotonic())

    async def cancel_early() -> float:
        task = asyncio.ensure_future(threads.run(work))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic()

    threads = WriteThreads(1, niceness=0)
    try:
        returned = asyncio.run(cancel_early())
    finally:
        threads.close()
    assert ended and ended[0] <= returned  # the slot is not freed while the work still runs


@pytest.mark.parametrize(("threads", "niceness"), [(0, 10), (1, -1), (1, 20)])
def test_bad_settings_are_refused(threads: int, niceness: int) -> None:
    with pytest.raises(ValueError, match="threads"):
        WriteThreads(threads, niceness)


class Body(BaseModel):
    rows: list[int]


def tiny_app(niceness: int) -> FastAPI:
    """Writes and reads on a ParsedOffLoop router, behind the service's WriteGate."""
    router = APIRouter(route_class=ParsedOffLoop)

    @router.post("/write")
    def write(body: Body) -> dict[str, Any]:
        return {**where(), "rows": len(body.rows)}

    @router.delete("/write/{n}")
    def delete(n: int) -> dict[str, Any]:
        return {**where(), "n": n}

    @router.get("/read")
    def read() -> dict[str, Any]:
        return where()

    app = FastAPI()
    app.include_router(router)
    settings = make_settings("sqlite:///unused.sqlite")
    threads = WriteThreads(2, niceness)
    pace = WritePace(settings.write_share)
    slots = WriteSlots(settings.key_writes, settings.write_queue)
    app.add_middleware(WriteGate, settings=settings, slots=slots, pace=pace, threads=threads)
    return app


@LINUX
def test_a_routes_writes_run_in_write_threads_and_its_reads_do_not() -> None:
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with TestClient(tiny_app(niceness=10)) as client:
        wrote = client.post("/write", json={"rows": [1, 2, 3]}).json()
        deleted = client.delete("/write/7").json()
        read = client.get("/read").json()
    assert wrote["rows"] == 3 and deleted["n"] == 7
    for answer in (wrote, deleted):
        assert answer["thread"].startswith("coldbrew-write")
        assert answer["nice"] == min(19, base + 10)
    assert not read["thread"].startswith("coldbrew-write") and read["nice"] == base


def test_a_refused_body_is_still_refused_from_a_write_thread() -> None:
    with TestClient(tiny_app(niceness=0)) as client:
        bad = client.post("/write", json={"rows": ["x"]})
        not_json = client.post("/write", content=b"{", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == ["body", "rows"]
    assert not_json.status_code == 422


@LINUX
def test_the_service_runs_its_writes_in_its_write_threads(tmp_path: Any) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'db.sqlite'}")
    app = create_app(settings, encoder=HashingEncoder(64))
    with TestClient(app) as client:
        assert client.post("/users/batch", json={"users": USERS}, headers=WRITE).status_code == 200
        assert client.get(f"/users/{USERS[0]['id']}", headers=WRITE).status_code == 200
        assert app.state.write_threads.lowered >= 1


def test_one_thread_runs_writes_one_after_another_in_their_order() -> None:
    threads, spans = WriteThreads(1, niceness=0), []

    def work(n: int) -> str:
        start = time.monotonic()
        time.sleep(0.02)
        spans.append((n, start, time.monotonic()))
        return threading.current_thread().name

    async def both() -> list[str]:
        return await asyncio.gather(threads.run(work, 0), threads.run(work, 1))

    try:
        names = asyncio.run(both())
    finally:
        threads.close()
    assert names[0] == names[1]  # the same thread
    (first, _, first_end), (second, second_start, _) = spans
    assert (first, second) == (0, 1) and second_start >= first_end  # never side by side


def test_the_service_has_as_many_write_threads_as_its_setting(tmp_path: Any) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert settings.write_threads == 1  # the default: writes' work one at a time
    two = make_settings(f"sqlite:///{tmp_path / 'db2.sqlite'}", write_threads=2)
    for chosen, expected in ((settings, 1), (two, 2)):
        app = create_app(chosen, encoder=HashingEncoder(64))
        with TestClient(app):
            assert app.state.write_threads.threads == expected
