"""Item vectors kept as int8 codes with one float32 scale a row: a quarter of float32's memory.

The database's ``int8`` format (:mod:`coldbrew.store.codec`) held in memory as it is stored: row
``r`` reads back as ``codes[r] * scales[r]``, so a restart rebuilds exactly what was served.
:class:`Int8Rows` stands where a float16 matrix stands in a compact index and in the zero-shot
model that shares the index's rows: a *slice* is a view (more int8 rows), any other index reads
rows back as float32 (what callers do arithmetic with), assignment quantises, and ``np.asarray``
decodes. Nothing decodes the whole matrix unless asked to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from coldbrew.store.codec import decode_rows, int8_parts, int8_rows, round_trip


class Int8Rows:
    """A ``(n, dim)`` matrix of int8 codes and ``n`` float32 scales."""

    dtype = np.dtype(np.int8)
    ndim = 2

    def __init__(self, codes: np.ndarray, scales: np.ndarray) -> None:
        if codes.dtype != np.int8 or codes.ndim != 2 or scales.shape != (len(codes),):
            raise ValueError("Int8Rows wants (n, dim) int8 codes and n float32 scales")
        self.codes = codes
        self.scales = scales

    @classmethod
    def zeros(cls, n: int, dim: int) -> Int8Rows:
        return cls(np.zeros((n, dim), dtype=np.int8), np.zeros(n, dtype=np.float32))

    @classmethod
    def of(cls, vectors: np.ndarray) -> Int8Rows:
        """``vectors`` (float) quantised, one scale per row."""
        scales, codes = int8_parts(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
        return cls(codes, scales)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    @property
    def size(self) -> int:
        return int(self.codes.size)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.scales.nbytes)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return Int8Rows(self.codes[key], self.scales[key])
        codes, scales = self.codes[key], self.scales[key]
        decoded: np.ndarray = codes.astype(np.float32) * np.asarray(scales)[..., None]
        return decoded

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, Int8Rows):
            self.codes[key], self.scales[key] = value.codes, value.scales
            return
        value = np.asarray(value, dtype=np.float32)
        fresh = Int8Rows.of(value.reshape(-1, self.codes.shape[1]))
        if value.ndim == 1:  # one row
            self.codes[key], self.scales[key] = fresh.codes[0], fresh.scales[0]
        else:
            self.codes[key], self.scales[key] = fresh.codes, fresh.scales

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        decoded: np.ndarray = self[np.arange(len(self))]
        return decoded if dtype is None else decoded.astype(dtype, copy=False)

    def take(self, rows: Any, axis: int = 0) -> Int8Rows:
        """The codes and scales of ``rows`` (integer positions) as more int8 rows, undecoded:
        ``ndarray.take(rows, axis=0)``, so a caller takes rows alike from either kind."""
        if axis != 0:
            raise ValueError("Int8Rows.take takes rows only (axis=0)")
        return Int8Rows(self.codes[rows], self.scales[rows])

    def tobytes(self) -> bytes:
        """The codes, then the scales: what the rows hold, byte for byte."""
        return self.codes.tobytes() + self.scales.tobytes()

    def astype(self, dtype: Any, copy: bool = True) -> np.ndarray:
        """The rows decoded (float32), then cast to ``dtype``."""
        return np.asarray(self, dtype=dtype)

    def same(self, other: Any, rows: Any = slice(None)) -> bool:
        """Whether ``other`` holds the very same codes and scales in ``rows`` (views of the
        very same memory are, without reading it: the start's share check of a million rows)."""
        if not isinstance(other, Int8Rows) or other.shape != self.shape:
            return False
        if _same_view(self.codes, other.codes) and _same_view(self.scales, other.scales):
            return True
        return np.array_equal(self.codes[rows], other.codes[rows]) and np.array_equal(
            self.scales[rows], other.scales[rows]
        )


def _same_view(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays are views of the same memory, element for element."""
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def empty_rows(n: int, dim: int, dtype: Any) -> Any:
    """``n`` zero rows in ``dtype``: :class:`Int8Rows` for int8, else a numpy matrix."""
    if np.dtype(dtype) == np.int8:
        return Int8Rows.zeros(n, dim)
    return np.zeros((n, dim), dtype=dtype)


def read_rows(data: Sequence[bytes], fmt: str, dim: int, dtype: Any) -> Any:
    """Rows stored in format ``fmt`` as ``dtype`` asks: int8 rows, for ``dtype`` int8, as
    :class:`Int8Rows` with their stored codes and scales (not decoded and quantised again);
    other formats, for int8, as float32 (quantised where they are put); else in ``dtype``."""
    if np.dtype(dtype) != np.int8:
        return decode_rows(data, fmt, dim).astype(dtype, copy=False)
    if fmt != "int8":
        return decode_rows(data, fmt, dim)
    scales, codes = int8_rows(data, dim)
    return Int8Rows(codes, scales)  # codes are a read-only view of ``data``: take rows to keep


def as_rows(vectors: np.ndarray, dtype: Any) -> Any:
    """``vectors`` held in ``dtype`` (int8: quantised into :class:`Int8Rows`)."""
    if np.dtype(dtype) == np.int8:
        return vectors if isinstance(vectors, Int8Rows) else Int8Rows.of(vectors)
    return np.asarray(vectors).astype(dtype, copy=False)


def as_stored(vectors: np.ndarray, dtype: Any) -> np.ndarray:
    """``vectors`` as rows of ``dtype`` will read back (float32 for int8, else ``dtype``)."""
    if np.dtype(dtype) == np.int8:
        return round_trip(vectors, "int8")
    return np.asarray(vectors).astype(dtype)


def same_rows(a: Any, b: Any, rows: Any = slice(None)) -> bool:
    """Whether two row matrices (numpy or :class:`Int8Rows`) hold the same values in ``rows``,
    without decoding int8 ones."""
    if isinstance(a, Int8Rows):
        return a.same(b, rows)
    if isinstance(b, Int8Rows):
        return False
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a[rows], b[rows]))
