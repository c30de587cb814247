"""A readers-writer lock: searches run side by side, a write waits for them and runs alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadWriteLock:
    """Many readers at once, or one writer. A waiting writer holds back new readers, so a
    steady stream of searches cannot starve an upsert; and the readers waiting when a write
    ends go before the next writer, so writes back to back cannot starve the searches."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0
        self._readers_waiting = 0
        self._admitted = 0  # readers let in ahead of waiting writers at a write's end

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._readers_waiting += 1
            while self._writing or (self._writers_waiting and not self._admitted):
                self._cond.wait()
            self._readers_waiting -= 1
            self._admitted = max(0, self._admitted - 1)
            self._readers += 1
        try:
            yield
        finally:
            self._release_read()

    @contextmanager
    def try_read(self) -> Iterator[bool]:
        """Read access if it is free now (yields True), else nothing at once (yields False)."""
        with self._cond:
            acquired = not (self._writing or (self._writers_waiting and not self._admitted))
            if acquired:
                self._readers += 1
        try:
            yield acquired
        finally:
            if acquired:
                self._release_read()

    def _release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if not self._readers:
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writing or self._readers or self._admitted:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._admitted = self._readers_waiting
                self._cond.notify_all()
