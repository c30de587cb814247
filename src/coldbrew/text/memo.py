"""An encoder that remembers: passages it can look up, queries it has encoded lately.

The service wraps its encoder in one so that a model (re)built from the database re-encodes
nothing the database already holds vectors for, and a returning user's words or attributes are
encoded once, not at every request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from coldbrew.text.encoder import Encoder, TextKind

Lookup = Callable[[str], np.ndarray | None]


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
    """

    def __init__(
        self, encoder: Encoder, passages: Lookup | None = None, *, capacity: int = 20_000
    ) -> None:
        self.inner = encoder
        self.passages = passages
        self.capacity = capacity
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory = threading.Lock()
        self._encoding = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

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
            with self._encoding:
                fresh = self.inner.encode(
                    list(missing), kind=kind, batch_size=batch_size, show_progress=show_progress
                )
            for (text, rows), vector in zip(missing.items(), fresh):
                out[rows] = vector
                if kind == "query":
                    self._remember(text, vector)
        return out
