"""Running the app under uvicorn with the limits a public-facing server needs.

uvicorn times out idle keep-alive connections but not a client that opens a connection and never
finishes its request headers: 200 such half-open connections were held for 40 s and more. The
protocols here close a connection whose headers are not complete ``header_timeout`` seconds after
it opened (or after its previous response), and refuse headers over :data:`MAX_HEADER_BYTES`.
The body has its own deadline (:class:`coldbrew.serve.limits.BodyLimit`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from coldbrew.config.settings import Settings

MAX_HEADER_BYTES = 64 * 1024
KEEP_ALIVE_SECONDS = 5


class _HeaderDeadline:
    """Close the connection if the request headers are not in by the deadline."""

    header_timeout = 10.0
    _timer: asyncio.TimerHandle | None = None
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def _arm(self) -> None:
        self._disarm()
        self._timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()


class H11WithDeadline(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with a header deadline (h11 already caps the header size)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # a request is in: its body has BodyLimit's own deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def _httptools_protocol() -> type | None:
    try:
        import httptools
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is in the serve extra
        return None

    class HttpToolsWithDeadline(_HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with a header deadline and a header size cap."""

        _header_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            self._header_bytes = 0
            super().on_message_begin()

        def _count(self, size: int) -> None:
            self._header_bytes += size
            if self._header_bytes > MAX_HEADER_BYTES:
                raise httptools.HttpParserError("request headers too large")

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value))
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HttpToolsWithDeadline


def server_config(app: Any, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """A uvicorn config with header/body deadlines, capped headers, and proxy headers trusted
    only from ``settings.forwarded_allow_ips`` (uvicorn trusts 127.0.0.1 by default, which would
    let any local client pick its own address and so its own rate limit)."""
    base = _httptools_protocol() or H11WithDeadline
    # a subclass per server, so two servers in one process keep their own deadlines
    protocol = type(base.__name__, (base,), {"header_timeout": settings.header_timeout})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        http=protocol,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )
