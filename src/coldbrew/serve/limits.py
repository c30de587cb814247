"""Request body limits as plain ASGI middleware: a JSON 413 or 408 before any parsing.

The body is read here, whole, before the app sees it: by ``Content-Length`` or while a chunked
body streams in, a body over ``max_bytes`` gets 413 (FastAPI turned an error raised while it read
the body into a 400), and one that takes longer than ``timeout`` seconds gets 408. The app then
reads the buffered body (at most ``max_bytes``; FastAPI would buffer it anyway).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    """A whole JSON response from plain ASGI code (middleware answers before the app)."""
    raw = json.dumps(body).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413 and bodies slower than ``timeout`` with 408."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.too_large = {"detail": f"request body too large: the limit is {max_bytes} bytes"}

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body; None if the client went away."""
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        close = {"connection": "close"}
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await send_json(send, 413, self.too_large, close)
            return
        try:
            body = await asyncio.wait_for(self._read(receive), self.timeout)
        except _TooLarge:
            await send_json(send, 413, self.too_large, close)
            return
        except TimeoutError:
            detail = f"request body too slow: it must arrive within {self.timeout:g} s"
            await send_json(send, 408, {"detail": detail}, close)
            return
        if body is None:
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over the buffered body, then waits for the disconnect."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
