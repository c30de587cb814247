"""One query's answer, remembered for the next call that asks the same: a large catalogue's
request asks each part twice (its proposals, then its candidates' scores), and the language
model's user vector once more for the item index's search."""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np


class LastQuery:
    """The array computed for the last key asked in each ``slot``, read only, until another
    key is asked there or the owner's state changes (:meth:`forget`: a fit, new or removed
    items, a user forgotten).

    The key must name everything the array depends on besides the owner's state. Safe to share
    between threads: each call reads the remembered pair once, and a stale pair is only ever
    replaced whole.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[Hashable, np.ndarray]] = {}

    def get(
        self, key: Hashable, compute: Callable[[], np.ndarray], slot: str = "query"
    ) -> np.ndarray:
        """The remembered array for ``key``, else ``compute()``'s (remembered from now on)."""
        found = self.peek(key, slot)
        if found is None:
            found = compute()
            found.flags.writeable = False
            self._last[slot] = (key, found)
        return found

    def peek(self, key: Hashable, slot: str = "query") -> np.ndarray | None:
        """The remembered array for ``key``, or None (nothing is computed)."""
        last = self._last.get(slot)
        return last[1] if last is not None and last[0] == key else None

    def forget(self) -> None:
        """Drop what is remembered (the owner's state changed)."""
        self._last = {}
