"""A set of item ids that is compact once frozen: the items by attribute value, for filters.

At a million items with one attribute of a hundred values, a Python ``set`` per value held
~40 MB of hash tables for ~8 MB of pointers. :class:`IdSet` keeps the ids known at start-up as
one sorted tuple (found by bisection) after :meth:`IdSet.freeze`; ids added since sit in a small
set, and frozen ids removed since in another, so a filter reads the same members as before.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, MutableSet


class IdSet(MutableSet[str]):
    """A mutable set of ids: a sorted tuple frozen at start-up, plus what changed since."""

    __slots__ = ("_frozen", "_gone", "_recent")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._frozen: tuple[str, ...] = ()
        self._gone: set[str] | None = None  # frozen ids removed since
        self._recent: set[str] | None = None  # ids added since, none of them frozen
        for i in ids:
            self.add(i)

    def _in_frozen(self, item_id: str) -> bool:
        n = bisect_left(self._frozen, item_id)
        return n < len(self._frozen) and self._frozen[n] == item_id

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, str):
            return False
        if self._recent and item_id in self._recent:
            return True
        return self._in_frozen(item_id) and not (self._gone and item_id in self._gone)

    def __len__(self) -> int:
        return len(self._frozen) - len(self._gone or ()) + len(self._recent or ())

    def __iter__(self) -> Iterator[str]:
        gone = self._gone
        if gone:
            yield from (i for i in self._frozen if i not in gone)
        else:
            yield from self._frozen
        yield from self._recent or ()

    def __repr__(self) -> str:
        return f"IdSet({sorted(self)!r})"

    def add(self, item_id: str) -> None:
        if self._in_frozen(item_id):
            if self._gone:
                self._gone.discard(item_id)
        elif self._recent is None:
            self._recent = {item_id}
        else:
            self._recent.add(item_id)

    def discard(self, item_id: str) -> None:
        if self._recent and item_id in self._recent:
            self._recent.remove(item_id)
        elif self._in_frozen(item_id):
            if self._gone is None:
                self._gone = set()
            self._gone.add(item_id)

    def freeze(self) -> None:
        """Hold every member in the sorted tuple (the sets of changes empty)."""
        self._frozen, self._gone, self._recent = tuple(sorted(self)), None, None
