"""The :class:`Encoder` protocol and a tiny deterministic encoder for tests.

Every encoder returns float32 rows with unit L2 norm, so an inner product is a cosine.
``kind`` says which side a text is on: ``"query"`` (a user) or ``"passage"`` (an item); models
trained with prefixes (e5) use it, others ignore it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

TextKind = Literal["query", "passage"]


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into unit-norm float32 vectors."""

    @property
    def name(self) -> str:
        """A stable name: equal names mean equal vectors for equal texts (used as cache key)."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Encode ``texts`` into an array of shape ``(len(texts), dim)``."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON-able description from which :func:`coldbrew.text.load_encoder` rebuilds it."""
        ...


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (zero rows stay zero), as float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    out: np.ndarray = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return out


_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; each CJK character is a token of its own."""
    text = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    for word in _TOKEN.findall(text):
        if any("\u4e00" <= ch <= "\u9fff" for ch in word):
            tokens.extend(ch for ch in word)
        else:
            tokens.append(word)
    return tokens


class HashingEncoder:
    """Deterministic bag of hashed words and character trigrams; no model, microseconds per text.

    Texts that share words get similar vectors, which is all unit tests need.
    """

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise ValueError(f"dim must be at least 8, got {dim}")
        self._dim = dim

    @property
    def name(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def config(self) -> dict[str, Any]:
        return {"type": "hashing", "dim": self._dim}

    def _features(self, text: str) -> list[str]:
        words = tokenize(text)
        grams = [w[i : i + 3] for w in words if len(w) > 3 for i in range(len(w) - 2)]
        return words + words + grams

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                h = int.from_bytes(digest, "little")
                out[row, h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
        return l2_normalize(out)
