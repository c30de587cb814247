"""The live catalogue in memory, compact: one ``bytes`` record an item instead of Python objects.

A million :class:`~coldbrew.store.Item` objects (a frozen dataclass, its ``__dict__``, title and
attribute dict) take ~460 MB beside their ids; the same items as one record each — the SHA-1 of
the text the item is encoded from, then ``[title, description, attributes]`` as compact UTF-8
JSON — take about a third of that, and the text key that used to sit in a dict of its own comes
with the record. An :class:`Item` is rebuilt on access (a few microseconds: only the items a
request returns or explains are read); membership, length and iteration never decode.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys
from collections.abc import Iterator, Mapping, MutableMapping

import numpy as np

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


class _OverRecords:
    """Membership, iteration and length of a ``{item id: record}`` dict, never decoding."""

    _rows: dict[str, bytes]

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


class ItemTable(_OverRecords, MutableMapping[str, Item]):
    """``{item id: Item}`` stored as packed records, in insertion order."""

    def __init__(self) -> None:
        self._rows: dict[str, bytes] = {}
        self.text_keys = _TextKeys(self._rows)
        """``{item id: text key}`` (hex SHA-1 of :func:`item_text`), read from the records."""

    def __getitem__(self, item_id: str) -> Item:
        title, description, attributes = json.loads(self._rows[item_id][DIGEST:])
        return Item(item_id, title, description, attributes)

    def __setitem__(self, item_id: str, item: Item) -> None:
        if item.item_id != item_id:
            raise ValueError(f"item {item.item_id!r} stored under id {item_id!r}")
        fields = [item.title, item.description, item.attributes]
        packed = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._rows[item_id] = text_digest(item_text(item)) + packed

    def __delitem__(self, item_id: str) -> None:
        del self._rows[item_id]

    def non_ascii(self) -> Iterator[str]:
        """The ids of the items whose record holds a character beyond ASCII (the only items
        whose text can be CJK), found without decoding any record."""
        return (i for i, record in self._rows.items() if not record[DIGEST:].isascii())

    def digest(self, item_id: str) -> bytes:
        """The SHA-1 of the item's text (raises ``KeyError`` for an unknown item)."""
        return self._rows[item_id][:DIGEST]


class _TextKeys(_OverRecords, Mapping[str, str]):
    def __init__(self, rows: dict[str, bytes]) -> None:
        self._rows = rows

    def __getitem__(self, item_id: str) -> str:
        return self._rows[item_id][:DIGEST].hex()


class TextIds:
    """``{short text key: an item id with that text}`` (:func:`short_key`), the memo's lookup.

    The catalogue read at start-up is held as one sorted ``uint64`` array of keys and a list of
    the ids (about 16 bytes an item, where a dict of a million int keys took ~115 MB); the keys
    of items written since sit in a small dict that is asked first. A key is never removed from
    the array: an id it finds may since have changed its text or gone, which the caller checks
    (it compares the item's full digest), exactly as it checks a colliding short key.
    """

    def __init__(self) -> None:
        self._keys = np.zeros(0, dtype=np.uint64)
        self._ids: list[str] = []
        self._recent: dict[int, str] = {}

    def rebuild(self, table: ItemTable) -> None:
        """Hold every item of ``table`` in the sorted array (the written-since dict empties)."""
        ids = list(table)
        keys = np.fromiter((short_key(table.digest(i)) for i in ids), np.uint64, len(ids))
        order = np.argsort(keys, kind="stable")
        self._keys, self._ids = keys[order], [ids[n] for n in order]
        self._recent = {}

    def get(self, key: int) -> str | None:
        """An item id that had this key's text (``None``: no item had it)."""
        found = self._recent.get(key)
        if found is not None:
            return found
        n = int(np.searchsorted(self._keys, np.uint64(key)))
        return self._ids[n] if n < len(self._keys) and int(self._keys[n]) == key else None

    def __setitem__(self, key: int, item_id: str) -> None:
        self._recent[key] = item_id

    def discard(self, key: int, item_id: str) -> None:
        """Forget that ``item_id`` has this key's text, where it was written since start-up."""
        if self._recent.get(key) == item_id:
            del self._recent[key]
