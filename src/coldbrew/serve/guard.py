"""Who may use how much: rate limits per key and per client address, a slow-down for a wrong key
tried again, and a bounded queue in front of the encoder.

Rate limits use the ``limits`` library (moving windows in memory): a well-tested implementation
of exact windows whose storage can be swapped for Redis or Memcached (``limits.storage``) when
several service processes must share one budget; an own token bucket would be as short, but
would need its own expiry of idle clients and could never be shared.

- A request with a valid key (read or write) counts against that key (``key_rate_limit``) and
  nothing else: no other caller's wrong keys can lock it out, behind a shared address included
  (issue 28, finding 7: ten wrong keys from one address used to give every key there 429s).
- Any other request, one with a wrong or invented key included, counts against its client
  address (``rate_limit``), so a flood of invented keys gets no more tries than keyless traffic.
- Each wrong key also counts against itself (``failed_key_limit``, by its hash): a client retrying
  one wrong key (a stale or mistyped one) gets 429 until the window passes.
- ``/healthz``, ``/readyz`` and ``/metrics`` are not limited (probes must not fail).
- A 429 is sent after ``rate_limit_delay`` seconds (default 1): answering a flood at once cost so
  much event-loop time that two flooding clients made everyone else's p99 six times worse; the
  pause holds a sequential flooder to about one request a second, for the price of one sleeping
  coroutine per refused request.

A right key is let in whatever its address did before, so no lockout keeps a guesser from seeing
a right guess succeed; guessing is held back by the keys' strength (:mod:`coldbrew.config.keys`; a
generated key has 144 random bits) and by the address's budget, which every guess spends.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from coldbrew.config.settings import Settings, hash_key
from coldbrew.serve.limits import send_json

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class Overloaded(Exception):
    """Too many requests already wait for the encoder (HTTP 503 with Retry-After)."""


def presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    """The key from ``X-API-Key``, else from ``Authorization: Bearer``; ``None`` without one."""
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    raw = headers.get(name)
    return None if raw is None else raw.decode("latin-1")


def scope_key(scope: Scope) -> str | None:
    """:func:`presented_key` of an ASGI request's headers (for middleware, before routing)."""
    headers = dict(scope.get("headers") or [])
    return presented_key(_header(headers, b"x-api-key"), _header(headers, b"authorization"))


class TimerlessMemory(MemoryStorage):
    """``limits``' in-memory storage without a thread per hit.

    :class:`~limits.storage.MemoryStorage` drops old entries in a ``threading.Timer`` (10 ms)
    that every hit starts anew once the last one has run: with one request every 100 ms, a new
    thread per request, started on the event loop, which waits until that thread first gets
    Python's GIL. With two write-key abusers' worker threads holding it, a by-id read waited
    there up to 10-18 ms before it was counted as a read. Here old entries are dropped on the
    caller's thread instead, at most once every ``expire_every`` seconds (they only take
    memory: the moving window reads the entries' times, not their expiry).

    Parameters
    ----------
    expire_every : float
        Seconds between two sweeps of old entries.
    """

    STORAGE_SCHEME = ["coldbrew-memory"]  # noqa: RUF012 (limits' annotation); not "memory"

    def __init__(self, expire_every: float = 1.0) -> None:
        super().__init__()
        self.expire_every = expire_every
        self.swept = time.monotonic()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the base's timer start
        if time.monotonic() - self.swept >= self.expire_every:
            self.swept = time.monotonic()
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class RateLimit:
    """ASGI middleware: 429 with ``Retry-After`` for clients and keys over their limits."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limiter = MovingWindowRateLimiter(TimerlessMemory())
        self.anonymous = parse(settings.rate_limit)
        self.keyed = parse(settings.key_rate_limit)
        self.failed = parse(settings.failed_key_limit)

    def _retry_after(self, limit: RateLimitItem, *ids: str) -> int:
        reset = self.limiter.get_window_stats(limit, *ids).reset_time
        return max(1, math.ceil(reset - time.time()))

    async def _refuse(self, send: Send, detail: str, limit: RateLimitItem, *ids: str) -> None:
        retry = str(self._retry_after(limit, *ids))
        await asyncio.sleep(self.settings.rate_limit_delay)
        await send_json(send, 429, {"detail": detail}, {"retry-after": retry})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        refusal = self._refusal(client, scope_key(scope))
        if refusal is not None:
            await self._refuse(send, *refusal)
            return
        await self.app(scope, receive, send)

    def _refusal(self, client: str, key: str | None) -> tuple[str, RateLimitItem, str, str] | None:
        """Why the request is refused (detail, limit and the limit's ids), or None."""
        if key is not None and self.settings.knows(key):
            digest = hash_key(key)
            if self.limiter.hit(self.keyed, "key", digest):
                return None
            return self._over(self.keyed), self.keyed, "key", digest
        if not self.limiter.hit(self.anonymous, "client", client):
            return self._over(self.anonymous), self.anonymous, "client", client
        if key is not None and not self.limiter.hit(self.failed, "failed", hash_key(key)):
            detail = "too many tries with this wrong API key: wait and retry"
            return detail, self.failed, "failed", hash_key(key)
        return None

    @staticmethod
    def _over(limit: RateLimitItem) -> str:
        return f"rate limit exceeded ({limit}): wait and retry"


class Admission:
    """At most ``limit`` requests in, or waiting for, the encoder; the next one is refused at
    once (:class:`Overloaded`) rather than queued behind them with unbounded latency.

    Used from the event loop only, so a plain counter suffices.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inside = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.inside >= self.limit:
            raise Overloaded(f"the service is busy ({self.limit} requests are being encoded)")
        self.inside += 1
        try:
            yield
        finally:
            self.inside -= 1
