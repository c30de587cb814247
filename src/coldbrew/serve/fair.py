"""Fair work per caller: a bounded number of writes in flight, per key and in all.

A write (``POST``/``DELETE`` on anything but the ``/recommend`` routes) takes a slot here
before its body is read, and keeps it until its answer is sent. One key (a caller without a
valid write key: its address) may hold ``key_writes`` slots; past that it gets 429. All writers
together hold at most ``write_queue``; past that every writer gets 503. Both carry ``Retry-
After`` and are sent after ``rate_limit_delay`` seconds, like every refusal of a flood
(:mod:`guard`), and no refused body is read or parsed.

A write's body (up to 1,000 rows, 1 MiB) is also decoded and validated in a worker thread
(:class:`ParsedOffLoop`), not on the event loop, where each one held every other request back
for tens of milliseconds.

So the write work waiting in the service is bounded whatever the callers do — at most
``write_queue`` bodies of at most ``COLDBREW_MAX_BODY_BYTES`` — and reads never wait for a
place: they take no slot here, they have the encoder first (:class:`~coldbrew.text.memo.
MemoEncoder` encodes a write's texts in pieces and lets queries in between), and unchanged
rows cost a write no encoding and no lock (:meth:`~coldbrew.live.engine.Engine.upsert_items`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import re
import threading
import time
import typing
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from coldbrew.config.settings import Settings, hash_key
from coldbrew.courtesy import paced, pause, stepping_aside
from coldbrew.serve.guard import scope_key
from coldbrew.serve.limits import send_json
from coldbrew.serve.writethreads import (
    WriteThreads,
    in_write_threads,
    run_as_write,
    writing_in,
)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_POSTS = frozenset({"/recommend", "/recommend/batch"})


def is_write(scope: Scope) -> bool:
    """Whether a request changes what the service stores (or starts a refit)."""
    return writes_at((scope.get("method", ""),), scope.get("path", ""))


def writes_at(methods: Iterable[str], path: str) -> bool:
    """Whether a route with these methods at ``path`` is a write."""
    return bool(WRITE_METHODS.intersection(methods)) and path not in READ_POSTS


class WriteSlots:
    """The writes in flight: per caller (a write key's hash, else the client's address) and in
    all. Used from the event loop only, so plain counters suffice."""

    def __init__(self, key_writes: int, write_queue: int) -> None:
        self.key_writes, self.write_queue = key_writes, write_queue
        self.inside: Counter[str] = Counter()
        self.total = 0

    def refusal(self, caller: str) -> tuple[int, str] | None:
        """The status and message refusing ``caller`` a slot now; ``None``: one is free."""
        if self.inside[caller] >= self.key_writes:
            return 429, (
                f"this key already has {self.key_writes} writes in progress: "
                "wait for one to finish and retry"
            )
        if self.total >= self.write_queue:
            return 503, f"the service is busy ({self.write_queue} writes in progress)"
        return None

    def enter(self, caller: str) -> None:
        self.inside[caller] += 1
        self.total += 1

    def leave(self, caller: str) -> None:
        self.total -= 1
        self.inside[caller] -= 1
        if not self.inside[caller]:
            del self.inside[caller]


class WritePace:
    """While reads are being served (one in the last second), writes keep the service busy
    at most ``share`` of the time: after a write of ``t`` seconds the next one starts only
    ``t * (1 - share) / share`` seconds later (waiting, its body unread, in its slot). With no
    reads, writes run back to back.

    Within a write, its worker threads step aside for the reads in flight at each of its
    pause points (:meth:`step_aside`, through :mod:`coldbrew.courtesy`)."""

    def __init__(self, share: float, longest_pause: float = 0.02) -> None:
        self.share = share
        self.rest_until = 0.0
        self.last_read = -math.inf
        self.longest_pause = longest_pause
        self._reads = 0
        self._no_reads = threading.Event()
        self._no_reads.set()

    @property
    def reads_in_flight(self) -> int:
        """Reads taken and not yet answered (set from the event loop only)."""
        return self._reads

    @reads_in_flight.setter
    def reads_in_flight(self, count: int) -> None:
        self._reads = count
        if count:
            self._no_reads.clear()
        else:
            self._no_reads.set()  # wakes the writes stepping aside

    def reading(self) -> bool:
        return time.monotonic() - self.last_read < 1.0

    async def turn(self) -> None:
        """Wait until a write may start."""
        while self.reading() and (wait := self.rest_until - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    def done(self, seconds: float) -> None:
        """A write that took ``seconds`` ended: the rest it owes, if reads are waiting."""
        if self.reading():
            rest = seconds * (1 - self.share) / self.share
            self.rest_until = max(self.rest_until, time.monotonic() + rest)

    def step_aside(self) -> None:
        """Called by a write's worker thread between pieces of its work: while reads are in
        flight, sleep (the GIL released) until they are answered, at most ``longest_pause``
        seconds a call, so a steady stream of reads slows writes but never stops them.

        It waits on an event the last read's end sets, not in a polling loop: two writes
        polling every 0.5 ms took the GIL from the event loop thousands of times a second, and
        on a busy machine each time the loop then queued for a CPU to take it back."""
        if self._reads:
            self._no_reads.wait(self.longest_pause)


class ReadsInFlight:
    """ASGI middleware, the outermost: counts the reads in flight for ``pace`` from the moment
    the service takes one, so a write's worker threads step aside for it at once, not only
    once it has passed the rate limit and the metrics (where, uncounted, it ran at half speed
    beside the writes: ``WriteGate`` counted it there before)."""

    def __init__(self, app: ASGIApp, pace: WritePace) -> None:
        self.app, self.pace = app, pace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_write(scope):
            await self.app(scope, receive, send)
            return
        self.pace.last_read = time.monotonic()
        self.pace.reads_in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.pace.reads_in_flight -= 1


class WriteGate:
    """ASGI middleware: a write takes a slot of ``slots`` before its body is read, or is
    refused (429: its key has ``key_writes`` in flight; 503: all keys have ``write_queue``)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        slots: WriteSlots,
        pace: WritePace,
        threads: WriteThreads | None = None,
    ) -> None:
        self.app, self.settings, self.slots, self.pace = app, settings, slots, pace
        self.threads = threads

    def _caller(self, scope: Scope) -> str:
        """The write key's hash; without one, the client's address."""
        key = scope_key(scope)
        if key is not None and self.settings.can_write(key):
            return "key:" + hash_key(key)
        return "client:" + str((scope.get("client") or ("unknown", 0))[0])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not is_write(scope):  # counted by ReadsInFlight, outside every other layer
            await self.app(scope, receive, send)
            return
        caller = self._caller(scope)
        refused = self.slots.refusal(caller)
        if refused is not None:
            await asyncio.sleep(self.settings.rate_limit_delay)
            await send_json(send, refused[0], {"detail": refused[1]}, {"retry-after": "1"})
            return
        self.slots.enter(caller)
        try:
            await self.pace.turn()
            began = time.monotonic()
            try:
                with writing_in(self.threads):  # its work in the write threads
                    await self.app(scope, receive, send)
            finally:
                self.pace.done(time.monotonic() - began)
        finally:
            self.slots.leave(caller)


class ParsedOffLoop(APIRoute):
    """A route whose JSON body is decoded and validated in a worker thread, then handed to
    FastAPI already validated (it takes a model instance as it is). A body that is valid JSON
    but not a valid model is refused from there too, with FastAPI's own errors; one that is not
    JSON is left to FastAPI, which says why.

    A write's decoding and its endpoint (a plain function) run in the service's
    :class:`~coldbrew.serve.writethreads.WriteThreads`, scheduled after the reads."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        plain = not inspect.iscoroutinefunction(endpoint)
        if plain and writes_at(kwargs.get("methods") or (), path):
            endpoint = in_write_threads(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field = self.body_field
        model = None if field is None else field.field_info.annotation
        if field is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
            return handler
        body_model: type[BaseModel] = model
        body_field = field

        async def parsed_first(request: Request) -> Response:
            raw = await request.body()
            pace: WritePace | None = getattr(request.app.state, "pace", None)
            with stepping_aside(_never if pace is None else pace.step_aside):
                parsed = await run_as_write(_validated, body_model, body_field, raw)
                if parsed is not None:
                    request._json = parsed  # what Request.json() returns from now on
                return await handler(request)  # its worker thread steps aside too

        return parsed_first


def _never() -> None:
    """No pause (a route used outside the service's app)."""


def _validated(model: type[BaseModel], field: Any, raw: bytes) -> BaseModel | None:
    """``raw`` as a valid ``model``; ``None`` if it is not JSON. Raises FastAPI's
    :class:`RequestValidationError` (as its handler would) if it is JSON but not a ``model``.

    Decoded and validated a row at a time (:func:`_rows_first`), so no single call holds
    Python's GIL for long: one ``json.loads`` and one ``model_validate`` of a 1 MiB batch each
    hold it 5-15 ms in one piece, during which the event loop cannot answer a read. Between
    pieces it pauses (:func:`coldbrew.courtesy.pause`)."""
    try:
        return model.model_validate(_rows_first(model, raw))
    except ValidationError:
        pass
    except ValueError:  # not JSON: FastAPI says why
        return None
    data = json.loads(raw)  # a row was not valid: FastAPI's own errors, for the whole body
    value, errors = field.validate(data, {}, loc=("body",))
    if not errors:  # cannot happen: the same model, the same data
        return typing.cast(BaseModel, value)
    raise RequestValidationError(errors, body=data)


def _rows_first(model: type[BaseModel], raw: bytes) -> Any:
    """``raw`` decoded, with each row of a top-level ``list[Model]`` field already validated
    (so validating ``model`` then takes the rows as they are). A row that is not valid raises;
    a list longer than its field allows is left for ``model`` to refuse, unread."""
    data = _decoded(raw)
    if not isinstance(data, dict):
        return data
    for name, field in model.model_fields.items():
        rows, row_model = data.get(name), _row_model(field.annotation)
        longest = min(
            (m.max_length for m in field.metadata if hasattr(m, "max_length")), default=None
        )
        fits = longest is None or (isinstance(rows, list) and len(rows) <= longest)
        if isinstance(rows, list) and row_model is not None and fits:
            data[name] = _validated_rows(row_model, rows)
    return data


def _validated_rows(model: type[BaseModel], rows: list[Any]) -> list[BaseModel]:
    return [model.model_validate(row) for row in paced(rows)]


def _row_model(annotation: Any) -> type[BaseModel] | None:
    """``M`` for a field annotated ``list[M]`` with ``M`` a pydantic model, else ``None``."""
    if typing.get_origin(annotation) is not list:
        return None
    (row,) = typing.get_args(annotation)
    return row if isinstance(row, type) and issubclass(row, BaseModel) else None


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def _decoded(raw: bytes) -> Any:
    """``json.loads(raw)``, but an object's list values decoded an element at a time.

    Only the outer object is walked here (keys, ``:``, ``,``); every value, and each element of
    a list value, is read by :meth:`json.JSONDecoder.raw_decode`, which reads JSON exactly as
    ``json.loads`` does. Anything else (not UTF-8, not an object) goes to ``json.loads``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return json.loads(raw)
    at = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    if not text.startswith("{", at):
        return json.loads(text)
    out: dict[str, Any] = {}
    at = _skip(text, at + 1)
    if text.startswith("}", at):
        return _end(text, at + 1, out)
    while True:
        key, at = _DECODER.raw_decode(text, at)
        if not isinstance(key, str):
            raise ValueError("an object key must be a string")
        at = _expect(text, _skip(text, at), ":")
        out[key], at = _value(text, _skip(text, at))
        at = _skip(text, at)
        if text.startswith("}", at):
            return _end(text, at + 1, out)
        at = _skip(text, _expect(text, at, ","))


def _value(text: str, at: int) -> tuple[Any, int]:
    """The JSON value at ``at``, a list an element at a time; and where it ends."""
    if not text.startswith("[", at):
        return _DECODER.raw_decode(text, at)
    rows: list[Any] = []
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        return rows, at + 1
    while True:
        pause(len(rows))
        row, at = _DECODER.raw_decode(text, at)
        rows.append(row)
        at = _skip(text, at)
        if text.startswith("]", at):
            return rows, at + 1
        at = _skip(text, _expect(text, at, ","))


def _skip(text: str, at: int) -> int:
    return _SPACE.match(text, at).end()  # type: ignore[union-attr]


def _expect(text: str, at: int, char: str) -> int:
    if not text.startswith(char, at):
        raise ValueError(f"expected {char!r} at character {at}")
    return at + 1


def _end(text: str, at: int, value: Any) -> Any:
    if _skip(text, at) != len(text):
        raise ValueError(f"extra data at character {at}")
    return value
