"""How vectors are stored: float32, float16, or int8 with one float32 scale per vector.

A stored vector is raw bytes plus the name of its format (the ``dtype`` column):

- ``float32``: ``dim`` little-endian float32 values (every row written before formats existed);
- ``float16``: ``dim`` float16 values, half the size (a unit vector's entries keep ~3 decimal
  digits: cosines move by ~1e-4);
- ``int8``: a float32 scale ``s`` then ``dim`` signed bytes ``q`` with ``v ~ s * q``
  (``s = max |v| / 127``), a quarter of the size.

Only numpy is needed here: the codec is used by the store and by the engine, which rounds a
freshly encoded vector through the same format so memory holds exactly what a restart will read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

VECTOR_DTYPES = ("float32", "float16", "int8")
"""Formats a vector can be stored in, fullest first."""


def check_dtype(dtype: str) -> str:
    """``dtype`` if it names a stored format, else a ``ValueError`` naming the allowed ones."""
    if dtype not in VECTOR_DTYPES:
        raise ValueError(f"vector dtype {dtype!r}: choose one of {', '.join(VECTOR_DTYPES)}")
    return dtype


def int8_parts(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row scales (float32) and int8 codes of ``vectors``; all-zero rows get scale 0."""
    peak = np.abs(vectors).max(axis=1) if vectors.shape[1] else np.zeros(len(vectors))
    scales = (peak / 127.0).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0)[:, None]
    codes = np.clip(np.rint(vectors / safe), -127, 127).astype(np.int8)
    return scales, codes


def encode_rows(vectors: np.ndarray, dtype: str) -> list[bytes]:
    """One ``bytes`` per row of ``vectors`` in format ``dtype``."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if check_dtype(dtype) == "float32":
        return [row.tobytes() for row in vectors]
    if dtype == "float16":
        return [row.tobytes() for row in vectors.astype(np.float16)]
    scales, codes = int8_parts(vectors)
    return [s.tobytes() + c.tobytes() for s, c in zip(scales, codes)]


def decode_rows(data: Sequence[bytes], dtype: str, dim: int) -> np.ndarray:
    """The float32 ``(len(data), dim)`` block of rows stored in format ``dtype``."""
    if not len(data):
        return np.zeros((0, dim), dtype=np.float32)
    raw = b"".join(data)
    if check_dtype(dtype) == "float32":
        return np.frombuffer(raw, dtype=np.float32).reshape(len(data), dim).copy()
    if dtype == "float16":
        return np.frombuffer(raw, dtype=np.float16).reshape(len(data), dim).astype(np.float32)
    scales, codes = int8_rows(data, dim)
    decoded: np.ndarray = codes.astype(np.float32) * scales[:, None]
    return decoded


def int8_rows(data: Sequence[bytes], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The scales (float32, ``(n,)``) and codes (int8, ``(n, dim)``: a read-only view of the
    joined bytes) of rows stored as ``int8``, undecoded."""
    packed = np.frombuffer(b"".join(data), dtype=np.uint8).reshape(len(data), 4 + dim)
    return packed[:, :4].copy().view(np.float32).ravel(), packed[:, 4:].view(np.int8)


def round_trip(vectors: np.ndarray, dtype: str) -> np.ndarray:
    """``vectors`` as they will read back after being stored in format ``dtype`` (float32)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if check_dtype(dtype) == "float32":
        return vectors
    if dtype == "float16":
        return vectors.astype(np.float16).astype(np.float32)
    scales, codes = int8_parts(vectors)
    out: np.ndarray = codes.astype(np.float32) * scales[:, None]
    return out
