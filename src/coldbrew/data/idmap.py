"""External ids <-> contiguous rows, growing as new ids arrive."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

MERGE_AT = 4096
"""Ids written since the last merge that the small dict holds before they join the arrays
(or an eighth of the arrays' size, whichever is more: merges stay rare as the map grows)."""
MAX_ROWS = 2**31 - 1
"""Rows are ``int32`` (the sorted arrays', and the faiss indexes' labels): at most this many ids."""


class IdMap:
    """A bidirectional map between string ids and rows ``0..n-1``.

    New ids may be added at any time; removed ids keep their row (so arrays indexed by row stay
    valid) and are reported by :meth:`is_active`.

    Compact at a million ids: the ids sit in a list (row -> id), and id -> row is one sorted
    ``int64`` array of the ids' hashes beside the ``int32`` row of each, searched by bisection,
    the found row's id compared to tell colliding hashes apart (a dict of a million ids to as
    many int objects held 43 MB more). Ids added since the last merge sit in a small dict that
    is asked first. The hashes are Python's ``hash`` (salted per process), so a pickled map
    recomputes them when it is read back.
    """

    @staticmethod
    def _hash(key: object) -> int:
        """The key's hash in the sorted array (a subclass may choose another)."""
        return hash(key)

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._ids: list[str] = []
        self._hashes = np.zeros(0, dtype=np.int64)  # sorted
        self._order = np.zeros(0, dtype=np.int32)  # the row of each hash
        self._recent: dict[str, int] = {}
        self._shared = False  # the ids' list is another map's too (copied before a write)
        self.add(ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return self._find(external_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __getstate__(self) -> dict[str, Any]:
        return {"ids": self._ids}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["ids"])  # type: ignore[misc]

    def _find(self, key: object) -> int | None:
        """The row of ``key``, or ``None`` (always for a key that is no ``str``)."""
        if not isinstance(key, str):
            return None
        row = self._recent.get(key)
        if row is not None:
            return row
        hashes = self._hashes
        if not len(hashes):
            return None
        hashed = self._hash(key)
        n, end = int(hashes.searchsorted(hashed)), len(hashes)
        while n < end and hashes[n] == hashed:
            row = int(self._order[n])
            if self._ids[row] == key:
                return row
            n += 1
        return None

    def _lookup(self, keys: list[str]) -> np.ndarray:
        """The rows of ``keys`` (``-1``: unknown), the sorted arrays searched in one go."""
        out = np.full(len(keys), -1, dtype=np.int64)
        if len(self._hashes) and keys:
            hashed = np.fromiter(map(self._hash, keys), np.int64, len(keys))
            at = np.minimum(np.searchsorted(self._hashes, hashed), len(self._hashes) - 1)
            candidates = np.where(self._hashes[at] == hashed, self._order[at], -1).tolist()
            for n, (key, row) in enumerate(zip(keys, candidates)):
                if row >= 0 and self._ids[row] == key:
                    out[n] = row
                elif row >= 0:  # a hash shared with another id: the slow way
                    found = self._find(key)
                    out[n] = -1 if found is None else found
        if self._recent:
            for n, key in enumerate(keys):
                row = self._recent.get(key)
                if row is not None:
                    out[n] = row
        return out

    def _merge_when_full(self) -> None:
        """Merge once the small dict holds :data:`MERGE_AT` ids, or an eighth of the arrays'."""
        if len(self._recent) >= max(MERGE_AT, len(self._hashes) // 8):
            self._merge()

    def _merge(self) -> None:
        """Move the ids of the small dict into the sorted arrays."""
        rows = np.fromiter(self._recent.values(), np.int64, len(self._recent))
        self._insert(list(self._recent), rows)
        self._recent = {}

    def _insert(self, keys: list[str], rows: np.ndarray) -> None:
        """Put ``keys`` (not in the arrays yet) and their rows into the sorted arrays."""
        hashed = np.fromiter(map(self._hash, keys), np.int64, len(keys))
        order = np.argsort(hashed, kind="stable")
        hashed, rows = hashed[order], rows[order]
        at = np.searchsorted(self._hashes, hashed, side="right")
        self._hashes = np.insert(self._hashes, at, hashed)
        self._order = np.insert(self._order, at, rows)

    def add(self, ids: Iterable[str]) -> np.ndarray:
        """Add ids not yet known; return the rows of all given ids, in order."""
        keys = [str(raw) for raw in ids]
        rows = self._lookup(keys)
        new = np.flatnonzero(rows < 0)
        if len(new):
            self._own_ids(len(new))
        if len(new) >= MERGE_AT and not self._recent:
            fresh = keys if len(new) == len(keys) else [keys[n] for n in new.tolist()]
            if len(dict.fromkeys(fresh)) == len(fresh):  # no id twice: straight to the arrays
                rows[new] = np.arange(len(self._ids), len(self._ids) + len(fresh))
                self._ids.extend(fresh)
                self._insert(fresh, rows[new])
                return rows
        for n in new.tolist():
            key = keys[n]
            row = self._recent.get(key)  # the same new id twice in ``ids``
            if row is None:
                row = len(self._ids)
                self._ids.append(key)
                self._recent[key] = row
            rows[n] = row
        self._merge_when_full()
        return rows

    def append(self, external_id: str) -> int:
        """Add one id known to be new (the caller checked); return its row."""
        self._own_ids(1)
        row = len(self._ids)
        self._ids.append(external_id)
        self._recent[external_id] = row
        self._merge_when_full()
        return row

    def _own_ids(self, new: int) -> None:
        """Before ``new`` ids are written: take an own copy of the ids' list if it is still
        :meth:`adopt`'s, after checking the rows stay below :data:`MAX_ROWS`."""
        if len(self._ids) + new > MAX_ROWS:
            raise OverflowError(f"{len(self._ids) + new:,} ids: at most {MAX_ROWS:,} rows")
        if self._shared:
            self._ids = list(self._ids)
            self._shared = False

    def adopt(self, other: IdMap) -> bool:
        """Hold ``other``'s ids and sorted arrays instead of an own copy, if both map the very
        same ids to the very same rows (at a million ids, 20 MB held once); returns whether it
        does. The two stay independent: the sorted arrays are only ever replaced, never changed
        in place, and whichever map adds an id first copies the ids' list (8 bytes an id)."""
        if other is self or type(other)._hash is not type(self)._hash:
            return False
        if not self.same_order(other):
            return False
        self._ids, self._hashes, self._order = other._ids, other._hashes, other._order
        self._recent = dict(other._recent)
        self._shared = other._shared = True
        return True

    def get(self, external_id: object) -> int | None:
        """The row of ``external_id`` (``None``: unknown; no conversion to ``str``)."""
        return self._find(external_id)

    def row(self, external_id: str) -> int:
        found = self._find(str(external_id))
        if found is None:
            raise KeyError(f"unknown id {external_id!r}")
        return found

    def rows(self, ids: Iterable[str], *, skip_unknown: bool = False) -> np.ndarray:
        """Rows of ``ids``; unknown ids raise ``KeyError`` unless ``skip_unknown``."""
        keys = [str(i) for i in ids]
        rows = self._lookup(keys)
        unknown = rows < 0
        if not unknown.any():
            return rows
        if skip_unknown:
            return rows[~unknown]
        raise KeyError(f"unknown id {keys[int(np.argmax(unknown))]!r}")

    def id(self, row: int) -> str:
        return self._ids[row]

    def ids(self, rows: Sequence[int] | np.ndarray | None = None) -> list[str]:
        if rows is None:
            return list(self._ids)
        return [self._ids[int(r)] for r in rows]

    def same_order(self, other: IdMap) -> bool:
        """Whether ``other`` maps the very same ids to the very same rows."""
        return other is self or self._ids == other._ids

    def to_array(self) -> np.ndarray:
        return np.asarray(self._ids, dtype=str)
