"""Write threads: a write's work runs in threads that the OS schedules after the reads.

Python lets one thread run at a time, but which *runnable* thread gets a core is the OS's
choice. When writers' worker threads, their clients and the service's event loop (which
answers by-id reads inline) all want one of few cores, the event loop can wait for a core
behind a write's thread: the pause points (:mod:`coldbrew.courtesy`) hand the interpreter to a
read only once the read's thread is on a core. So the work of a write (decoding and validating
its body, then its endpoint) runs here, in threads whose nice value is ``niceness`` above the
service's (``COLDBREW_WRITE_NICENESS``, 10 by default, as the refit worker's): while a read
wants a core a write's thread gets about a tenth of the share it would, and all of a core the
reads leave idle. On Linux a nice value belongs to a thread; elsewhere it would lower the
whole process, so there the threads keep the service's priority.

Measured under two write-key abusers on an idle machine, it changed nothing (by-id p99 under
the changed-users attack 2.00x of quiet without it, 2.01x with it, on SQLite); on a loaded
machine its effect was not separable from the load (benchmarks/notes/2026-11-30-abuse.md,
"Writes' threads at a lower OS priority").

The pool has ``COLDBREW_WRITE_THREADS`` threads, one by default: Python runs one thread at a
time, so a second write decoding beside the first gains nothing but is one more thread the event
loop queues behind for the interpreter when a read comes in (benchmarks/notes/2026-11-30-abuse.md,
"One write thread"). Writes wait their turn for it in the order they came, up to
``COLDBREW_WRITE_QUEUE`` in all.

A write whose caller went away still runs to its end (as in Starlette's own worker threads),
so its slot (:class:`~coldbrew.serve.fair.WriteGate`) is held until its work is done.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger("coldbrew.serve")

_THREADS: contextvars.ContextVar[WriteThreads | None] = contextvars.ContextVar(
    "coldbrew_write_threads", default=None
)


class WriteThreads:
    """``threads`` worker threads for writes, ``niceness`` below the service in the OS's
    eyes (0: the same priority)."""

    def __init__(self, threads: int, niceness: int) -> None:
        if threads < 1 or not 0 <= niceness <= 19:
            raise ValueError(f"threads {threads} (at least 1), niceness {niceness} (0 to 19)")
        self.threads, self.niceness = threads, niceness
        self.lowered = 0  # threads whose priority was lowered
        self._count = threading.Lock()  # new threads run _lower side by side
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="coldbrew-write", initializer=self._lower
        )

    def _lower(self) -> None:
        """Lower the calling thread's priority (on Linux, where a thread has its own)."""
        if not self.niceness or not sys.platform.startswith("linux"):
            return
        thread = threading.get_native_id()
        try:
            now = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(19, now + self.niceness))
        except OSError as err:  # a sandbox may forbid it: writes then share the reads' priority
            log.warning("write threads keep the service's priority: %s", err)
            return
        with self._count:
            self.lowered += 1

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a write thread, in the caller's context (its
        ``contextvars``: the pause points' way to step aside)."""
        context = contextvars.copy_context()
        work = functools.partial(context.run, fn, *args, **kwargs)
        future = asyncio.get_running_loop().run_in_executor(self._pool, work)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])  # the work runs to its end; so does the slot
            raise

    def close(self) -> None:
        """Let the threads end once their work is done; take no new work."""
        self._pool.shutdown(wait=False)


@contextmanager
def writing_in(threads: WriteThreads | None) -> Iterator[None]:
    """Within this block, :func:`in_write_threads` endpoints run in ``threads`` (``None``:
    Starlette's worker threads, as any other endpoint)."""
    token = _THREADS.set(threads)
    try:
        yield
    finally:
        _THREADS.reset(token)


async def run_as_write(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn`` in the write threads of the enclosing :func:`writing_in`, else in Starlette's."""
    threads = _THREADS.get()
    if threads is None:
        return await run_in_threadpool(fn, *args, **kwargs)
    return await threads.run(fn, *args, **kwargs)


def in_write_threads(endpoint: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """``endpoint`` (a plain function) as a coroutine that runs it with :func:`run_as_write`.
    FastAPI reads the parameters through ``__wrapped__``, as from ``endpoint`` itself."""

    @functools.wraps(endpoint)
    async def as_write(*args: P.args, **kwargs: P.kwargs) -> T:
        return await run_as_write(endpoint, *args, **kwargs)

    return as_write
