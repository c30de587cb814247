"""Pause points: work done for a write steps aside for the reads waiting on the interpreter.

A thread that holds Python's GIL hands it to another only every switch interval, and takes it
back at once: a read answered while a write's worker thread decodes, compares or stores
1,000 rows gets half the interpreter and takes twice as long. So such loops call
:func:`pause` once a piece; where the service installed a way to step aside
(:func:`stepping_aside`, set per request and carried into its worker threads by
``contextvars``), the write sleeps there while reads are in flight. Elsewhere (the command
line, a bulk import, tests) :func:`pause` does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

PIECE = 32
"""Units of work (rows) between two pause points: about 0.5 ms for 1 KB rows."""

_STEP_ASIDE: ContextVar[Callable[[], None] | None] = ContextVar("coldbrew_step_aside", default=None)


@contextmanager
def stepping_aside(step_aside: Callable[[], None]) -> Iterator[None]:
    """Within this block (and the threads it starts work in), :func:`pause` calls
    ``step_aside``."""
    token = _STEP_ASIDE.set(step_aside)
    try:
        yield
    finally:
        _STEP_ASIDE.reset(token)


def pausing() -> bool:
    """Whether :func:`pause` may step aside here (work that must be cut into pieces first,
    such as an ORM flush, need only be cut when it does)."""
    return _STEP_ASIDE.get() is not None


def pause(n: int = 0) -> None:
    """A pause point before the ``n``-th unit of work: steps aside at every :data:`PIECE`-th."""
    if n % PIECE == 0 and (step_aside := _STEP_ASIDE.get()) is not None:
        step_aside()


def paced(rows: Iterable[T]) -> Iterator[T]:
    """``rows``, with a pause point before each of them (stepping aside once a piece)."""
    for n, row in enumerate(rows):
        pause(n)
        yield row
