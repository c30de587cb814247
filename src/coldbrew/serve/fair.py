"""Fair work per caller: a bounded number of writes in flight, per key and in all.

A write (``POST``/``DELETE`` on anything but ``/recommend``) takes a slot here before its body
is read, and keeps it until its answer is sent. One key (a caller without a valid write key:
its address) may hold ``key_writes`` slots; past that it gets 429. All writers together hold
at most ``write_queue``; past that every writer gets 503. Both carry ``Retry-After`` and are
sent after ``rate_limit_delay`` seconds, like every refusal of a flood (:mod:`guard`), and no
refused body is read or parsed.

A write's body (up to 1,000 rows, 1 MiB) is also decoded and validated in a worker thread
(:class:`ParsedOffLoop`), not on the event loop, where each one held every other request back
for tens of milliseconds.

So the write work waiting in the service is bounded whatever the callers do — at most
``write_queue`` bodies of at most ``COLDBREW_MAX_BODY_BYTES`` — and reads never wait for a
place: they take no slot here, they have the encoder first (:class:`~coldbrew.text.memo.
MemoEncoder` encodes a write's texts in pieces and lets queries in between), and unchanged
rows cost a write no encoding and no lock (:meth:`~coldbrew.serve.engine.Engine.upsert_items`).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from coldbrew.serve.guard import scope_key
from coldbrew.serve.limits import ASGIApp, Receive, Scope, Send, send_json
from coldbrew.serve.settings import Settings, hash_key

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_POSTS = frozenset({"/recommend"})


def is_write(scope: Scope) -> bool:
    """Whether a request changes what the service stores (or starts a refit)."""
    return scope.get("method") in WRITE_METHODS and scope.get("path") not in READ_POSTS


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
    reads, writes run back to back."""

    def __init__(self, share: float) -> None:
        self.share = share
        self.rest_until = 0.0
        self.last_read = -math.inf

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


class WriteGate:
    """ASGI middleware: a write takes a slot of ``slots`` before its body is read, or is
    refused (429: its key has ``key_writes`` in flight; 503: all keys have ``write_queue``)."""

    def __init__(
        self, app: ASGIApp, settings: Settings, slots: WriteSlots, pace: WritePace
    ) -> None:
        self.app, self.settings, self.slots, self.pace = app, settings, slots, pace

    def _caller(self, scope: Scope) -> str:
        """The write key's hash; without one, the client's address."""
        key = scope_key(scope)
        if key is not None and self.settings.can_write(key):
            return "key:" + hash_key(key)
        return "client:" + str((scope.get("client") or ("unknown", 0))[0])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_write(scope):
            if scope["type"] == "http":
                self.pace.last_read = time.monotonic()
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
                await self.app(scope, receive, send)
            finally:
                self.pace.done(time.monotonic() - began)
        finally:
            self.slots.leave(caller)


class ParsedOffLoop(APIRoute):
    """A route whose JSON body is decoded and validated in a worker thread, then handed to
    FastAPI already validated (it takes a model instance as it is). A body that fails there
    is left to FastAPI, which refuses it with its usual 422."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field = self.body_field
        model = None if field is None else field.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return handler
        body_model: type[BaseModel] = model

        async def parsed_first(request: Request) -> Response:
            parsed = await run_in_threadpool(_validated, body_model, await request.body())
            if parsed is not None:
                request._json = parsed  # what Request.json() returns from now on
            return await handler(request)

        return parsed_first


def _validated(model: type[BaseModel], raw: bytes) -> BaseModel | None:
    """``raw`` as a valid ``model``; ``None`` if it is not one."""
    try:
        return model.model_validate(json.loads(raw))
    except ValueError:  # not JSON, or not valid: FastAPI says why
        return None
