"""External ids <-> contiguous rows, growing as new ids arrive."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class IdMap:
    """A bidirectional map between string ids and rows ``0..n-1``.

    New ids may be added at any time; removed ids keep their row (so arrays indexed by row stay
    valid) and are reported by :meth:`is_active`.
    """

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self.add(ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._rows

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._ids)

    def add(self, ids: Iterable[str]) -> np.ndarray:
        """Add ids not yet known; return the rows of all given ids, in order."""
        rows = []
        for raw in ids:
            key = str(raw)
            row = self._rows.get(key)
            if row is None:
                row = len(self._ids)
                self._ids.append(key)
                self._rows[key] = row
            rows.append(row)
        return np.asarray(rows, dtype=np.int64)

    def row(self, external_id: str) -> int:
        try:
            return self._rows[str(external_id)]
        except KeyError:
            raise KeyError(f"unknown id {external_id!r}") from None

    def rows(self, ids: Iterable[str], *, skip_unknown: bool = False) -> np.ndarray:
        """Rows of ``ids``; unknown ids raise ``KeyError`` unless ``skip_unknown``."""
        if skip_unknown:
            return np.asarray(
                [self._rows[i] for i in map(str, ids) if i in self._rows], dtype=np.int64
            )
        return np.asarray([self.row(i) for i in ids], dtype=np.int64)

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
