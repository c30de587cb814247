"""An encoder that remembers: passages it can look up, queries it has encoded lately.

The service wraps its encoder in one so that a model (re)built from the database re-encodes
nothing the database already holds vectors for, and a returning user's words or attributes are
encoded once, not at every request.

The encoder runs one call at a time, and a request waiting for its own words (a query) goes
before bulk work (passages: a catalogue batch), which is encoded in pieces of ``chunk`` texts
that each queue again: a write of 1,000 new items holds a text query back by one piece, not by
the whole batch. Before each piece a write steps aside while the service answers reads
(:func:`coldbrew.courtesy.pause`): the encoder's threads take every core, and a by-id read
that needs no encoder would otherwise share the CPU with them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from coldbrew.courtesy import pause
from coldbrew.text.encoder import Encoder, TextKind

Lookup = Callable[[str], np.ndarray | None]
PIECE_SECONDS = 0.05
"""How long one piece of passages should hold the encoder (pieces are sized to it, from the
pace of the one before, within ``chunk``): a text query waits about this long for a write."""


class PriorityLock:
    """A mutex whose urgent waiters go first: a non-urgent caller waits while the lock is held
    or any urgent caller waits for it, so bulk work taken in small pieces lets every urgent
    caller in after at most one piece."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False
        self._urgent_waiting = 0
        self.waiting = 0
        """How many callers wait for the lock now."""

    def acquire(self, urgent: bool = False) -> None:
        """Wait for the lock; ``urgent`` callers are served before non-urgent ones."""
        with self._cond:
            self._urgent_waiting += urgent
            self.waiting += 1
            while self._held or (not urgent and self._urgent_waiting):
                self._cond.wait()
            self._urgent_waiting -= urgent
            self.waiting -= 1
            self._held = True

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    @contextmanager
    def hold(self, urgent: bool = False) -> Iterator[None]:
        """The lock for a ``with`` block (see :meth:`acquire`)."""
        self.acquire(urgent)
        try:
            yield
        finally:
            self.release()


class MemoEncoder:
    """``encoder`` with a passage lookup and an LRU memory of query vectors.

    Parameters
    ----------
    encoder
        The encoder that does the work; it runs one call at a time (not every backend is
        thread-safe, and the service encodes from many threads).
    passages
        ``text -> vector or None``: stored vectors of passages (item texts) to reuse.
    capacity
        How many query texts to remember.
    chunk
        Passages are encoded at most this many at a time (fewer where that would hold the
        encoder over :data:`PIECE_SECONDS`), queries going first between pieces (none: all at
        once, for an encoder that batches work elsewhere, such as a Ray cluster).
    dim
        The vectors' size when the caller knows it (from the stored passages' vectors), so that
        asking for it loads no model: an encoder that loads on first use (PyTorch's) then loads
        only when a text must really be encoded.

    Attributes
    ----------
    encoded
        How many texts of each kind the inner encoder has encoded (what the memory saved is
        not counted).
    """

    def __init__(
        self,
        encoder: Encoder,
        passages: Lookup | None = None,
        *,
        capacity: int = 20_000,
        chunk: int | None = None,
        dim: int | None = None,
    ) -> None:
        if chunk is not None and chunk < 1:
            raise ValueError(f"chunk={chunk!r}: must be at least 1 (or None: all at once)")
        self.inner = encoder
        self._dim = dim
        self.passages = passages
        self.capacity = capacity
        self.chunk = chunk
        self.encoded: dict[str, int] = {"passage": 0, "query": 0}
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory = threading.Lock()
        self._encoding = PriorityLock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim if self._dim is None else self._dim

    def config(self) -> dict[str, Any]:
        return self.inner.config()

    def remembers(self, texts: Sequence[str], kind: TextKind = "query") -> bool:
        """Whether every text would be answered without running the encoder."""
        return all(self._recall(t, kind) is not None for t in texts)

    def _recall(self, text: str, kind: TextKind) -> np.ndarray | None:
        if kind == "passage":
            return self.passages(text) if self.passages is not None else None
        with self._memory:
            found = self._queries.get(text)
            if found is not None:
                self._queries.move_to_end(text)
            return found

    def _remember(self, text: str, vector: np.ndarray) -> None:
        with self._memory:
            self._queries[text] = vector
            while len(self._queries) > self.capacity:
                self._queries.popitem(last=False)

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for row, text in enumerate(texts):
            found = self._recall(text, kind)
            if found is None:
                missing.setdefault(text, []).append(row)
            else:
                out[row] = found
        if missing:
            fresh = self._run(list(missing), kind, batch_size, show_progress)
            for (text, rows), vector in zip(missing.items(), fresh):
                out[rows] = vector
                if kind == "query":
                    self._remember(text, vector)
        return out

    def _run(
        self, texts: list[str], kind: TextKind, batch_size: int, show_progress: bool
    ) -> np.ndarray:
        """The inner encoder's vectors for ``texts``: a query at once and first, passages in
        pieces of :attr:`chunk` that each wait behind the queries waiting then."""
        urgent = kind == "query"
        chunk = None if urgent else self.chunk
        most = len(texts) if chunk is None else chunk
        step, start, pieces = most if chunk is None else min(most, 4), 0, []
        while start < len(texts):
            piece = texts[start : start + step]
            if not urgent:
                pause()  # a write's piece waits while the service answers reads
            with self._encoding.hold(urgent):
                began = time.perf_counter()
                pieces.append(
                    self.inner.encode(
                        piece, kind=kind, batch_size=batch_size, show_progress=show_progress
                    )
                )
                took = time.perf_counter() - began
                self.encoded[kind] = self.encoded.get(kind, 0) + len(piece)
            start += len(piece)
            # as many texts as fit in PIECE_SECONDS at the pace just seen, at most ``chunk``
            step = max(1, min(most, int(len(piece) * PIECE_SECONDS / max(took, 1e-6))))
        return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
