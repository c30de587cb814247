"""The live catalogue in memory, compact: packed records in columns instead of Python objects.

A million :class:`~coldbrew.store.Item` objects (a frozen dataclass, its ``__dict__``, title and
attribute dict) take ~460 MB beside their ids; the same items as one record each — the SHA-1 of
the text the item is encoded from, then ``[title, description, attributes]`` as compact UTF-8
JSON — appended to one buffer take about a sixth of that, and the text key that used to sit in a
dict of its own comes with the record. An :class:`Item` is rebuilt on access (a few
microseconds: only the items a request returns or explains are read); membership, length and
iteration never decode.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys
from array import array
from collections.abc import Iterator, Mapping, MutableMapping

import numpy as np

from coldbrew.data.idmap import IdMap
from coldbrew.live.records import item_text
from coldbrew.store import Item
from coldbrew.text.cache import text_digest

DIGEST = 20  # bytes of coldbrew.text.cache.text_digest (text_key is its hex form)


def short_key(digest: bytes) -> int:
    """The first 8 bytes of a text digest as an int (a compact dictionary key)."""
    return int.from_bytes(digest[:8], "little")


def release_free_memory() -> None:
    """Hand freed memory back to the system: pyarrow's pool (where pandas 3 keeps a frame's
    strings; its mimalloc keeps what they freed: the zero-shot model's start-up frame of a
    million item texts left ~190 MB there) when pyarrow is loaded, then the C heap's free pages
    (glibc's ``malloc_trim``; elsewhere nothing): after start-up has read a large catalogue
    through transient rows and frames, the freed memory otherwise stays counted in the
    process's resident size."""
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


class ItemTable(MutableMapping[str, Item]):
    """``{item id: Item}`` stored as packed records in columns, in insertion order.

    Each record is the item's text digest then its fields as compact JSON. An item first
    written is appended to one ``bytearray`` (its end in an ``int64`` array of offsets) under
    the next row of a compact :class:`~coldbrew.data.idmap.IdMap`, so a million items are one
    buffer and two arrays, not a million ``bytes`` objects (33 bytes of header each) under a
    dict. An item written again keeps its row and place; its new record sits in a small dict
    asked first. A deleted item's row is marked dead (its bytes stay until the process ends);
    written again, it comes back at its old place.
    """

    def __init__(self) -> None:
        self._keys = IdMap()  # item id -> row, every id ever appended
        self._buffer = bytearray()
        self._ends = array("q")  # row n: buffer[ends[n - 1]:ends[n]] (0 before row 0)
        self._alive = bytearray()  # row n still an item
        self._rewritten: dict[str, bytes] = {}  # records of items written again
        self._count = 0
        self.text_keys = _TextKeys(self)
        """``{item id: text key}`` (hex SHA-1 of :func:`item_text`), read from the records."""

    def share_keys(self, ids: IdMap) -> bool:
        """Hold ``ids`` (an index's map of the same ids in the same order) as the rows of the
        items instead of an own map; see :meth:`~coldbrew.data.idmap.IdMap.adopt`."""
        return self._keys.adopt(ids)

    def _row(self, item_id: object) -> int | None:
        """The row of a current item (``None``: not an item)."""
        row = self._keys.get(item_id)
        return row if row is not None and self._alive[row] else None

    def _record(self, item_id: str) -> bytes:
        record = self._rewritten.get(item_id)
        if record is not None:
            return record
        row = self._row(item_id)
        if row is None:
            raise KeyError(item_id)
        return bytes(self._buffer[self._ends[row - 1] if row else 0 : self._ends[row]])

    def __contains__(self, item_id: object) -> bool:
        return self._row(item_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys.ids(self._live_rows()))

    def _live_rows(self) -> np.ndarray:
        return np.flatnonzero(np.frombuffer(bytes(self._alive), dtype=np.uint8))

    def _starts(self) -> np.ndarray:
        """Where each row's record starts in the buffer."""
        ends = np.frombuffer(bytes(self._ends), dtype=np.int64)
        return np.concatenate([np.zeros(1, dtype=np.int64), ends[:-1]])

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, item_id: str) -> Item:
        title, description, attributes = json.loads(self._record(item_id)[DIGEST:])
        return Item(item_id, title, description, attributes)

    def __setitem__(self, item_id: str, item: Item) -> None:
        if item.item_id != item_id:
            raise ValueError(f"item {item.item_id!r} stored under id {item_id!r}")
        self.put(item)

    def put(self, item: Item) -> bytes | None:
        """Hold ``item``; return the text digest of the item it replaces (``None``: new)."""
        fields = [item.title, item.description, item.attributes]
        packed = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        record = text_digest(item_text(item)) + packed
        row = self._keys.get(item.item_id)
        if row is None:  # a new id: appended to the columns
            self._keys.append(item.item_id)
            self._buffer += record
            self._ends.append(len(self._buffer))
            self._alive.append(1)
            self._count += 1
            return None
        old = self.digest(item.item_id) if self._alive[row] else None
        if old is None:
            self._alive[row] = 1
            self._count += 1
        self._rewritten[item.item_id] = record
        return old

    def __delitem__(self, item_id: str) -> None:
        row = self._row(item_id)
        if row is None:
            raise KeyError(item_id)
        self._alive[row] = 0
        self._rewritten.pop(item_id, None)
        self._count -= 1

    def trim(self) -> None:
        """Give back the columns' spare capacity (after a bulk read)."""
        self._buffer = bytearray(self._buffer)
        self._ends = array("q", self._ends)

    def short_key_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every item's row (see :meth:`id_at`) and :func:`short_key`, in one go."""
        rows = self._live_rows()
        raw = np.frombuffer(bytes(self._buffer), dtype=np.uint8)
        at = self._starts()[rows][:, None] + np.arange(8)
        keys = np.ascontiguousarray(raw[at]).view("<u8").ravel().astype(np.uint64)
        if self._rewritten:
            for n, item_id in enumerate(self._keys.ids(rows)):
                record = self._rewritten.get(item_id)
                if record is not None:
                    keys[n] = short_key(record)
        return rows, keys

    def id_at(self, row: int) -> str:
        """The id ever appended at ``row`` (a row never changes its id, gone or not)."""
        return self._keys.id(row)

    def non_ascii(self) -> Iterator[str]:
        """The ids of the items whose record holds a character beyond ASCII (the only items
        whose text can be CJK), found without decoding any record."""
        raw = np.frombuffer(bytes(self._buffer), dtype=np.uint8)
        rows = np.zeros(0, dtype=np.int64)
        if len(raw):
            # the largest byte of each record's JSON: [start + DIGEST, end), the digest skipped
            bounds = np.empty(2 * len(self._ends), dtype=np.int64)
            bounds[0::2] = self._starts() + DIGEST
            bounds[1::2] = np.frombuffer(bytes(self._ends), dtype=np.int64)
            rows = np.flatnonzero(np.maximum.reduceat(raw, bounds[:-1])[0::2] >= 0x80)
        alive = np.frombuffer(bytes(self._alive), dtype=np.uint8)
        found = [i for i in self._keys.ids(rows[alive[rows] > 0]) if i not in self._rewritten]
        again = [i for i, record in self._rewritten.items() if not record[DIGEST:].isascii()]
        return iter(found + again)

    def digest(self, item_id: str) -> bytes:
        """The SHA-1 of the item's text (raises ``KeyError`` for an unknown item)."""
        return self._record(item_id)[:DIGEST]


class _TextKeys(Mapping[str, str]):
    def __init__(self, table: ItemTable) -> None:
        self._table = table

    def __getitem__(self, item_id: str) -> str:
        return self._table.digest(item_id).hex()

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


class TextIds:
    """``{short text key: an item id with that text}`` (:func:`short_key`), the memo's lookup.

    The catalogue read at start-up is held as one sorted ``uint64`` array of keys and the
    ``int32`` table row of each, read back to its id on a hit (12 bytes an item, where a dict of
    a million int keys took ~115 MB and a list of the ids 8 MB more than the rows); the keys
    of items written since sit in a small dict that is asked first. A key is never removed from
    the array: an id it finds may since have changed its text or gone, which the caller checks
    (it compares the item's full digest), exactly as it checks a colliding short key.
    """

    def __init__(self) -> None:
        self._keys = np.zeros(0, dtype=np.uint64)
        self._rows = np.zeros(0, dtype=np.int32)  # the table's row of each key
        self._table = ItemTable()
        self._recent: dict[int, str] = {}

    def rebuild(self, table: ItemTable) -> None:
        """Hold every item of ``table`` in the sorted array (the written-since dict empties)."""
        rows, keys = table.short_key_rows()
        order = np.argsort(keys, kind="stable")
        self._keys, self._rows = keys[order], rows[order].astype(np.int32)
        self._table, self._recent = table, {}

    def get(self, key: int) -> str | None:
        """An item id that had this key's text (``None``: no item had it)."""
        found = self._recent.get(key)
        if found is not None:
            return found
        n = int(np.searchsorted(self._keys, np.uint64(key)))
        if n < len(self._keys) and int(self._keys[n]) == key:
            return self._table.id_at(int(self._rows[n]))
        return None

    def __setitem__(self, key: int, item_id: str) -> None:
        self._recent[key] = item_id

    def discard(self, key: int, item_id: str) -> None:
        """Forget that ``item_id`` has this key's text, where it was written since start-up."""
        if self._recent.get(key) == item_id:
            del self._recent[key]
