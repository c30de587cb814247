"""Embedding cache: vectors keyed by (encoder name, text kind, text hash), stored as ``.npz``.

A second run over an unchanged catalogue encodes nothing. One file per encoder and kind, so a
model change never serves stale vectors.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from coldbrew.text.encoder import Encoder, TextKind


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A directory of ``.npz`` files, one per encoder and kind."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _file(self, encoder: Encoder, kind: TextKind) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder.name)[-120:]
        return self.directory / f"{safe}.{kind}.npz"

    def _read(self, file: Path) -> dict[str, np.ndarray]:
        if not file.exists():
            return {}
        with np.load(file, allow_pickle=False) as data:
            keys, vectors = data["keys"].tolist(), data["vectors"]
        return dict(zip(keys, vectors))

    def encode(
        self,
        encoder: Encoder,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Vectors for ``texts``, encoding only those not cached yet (then caching them)."""
        file = self._file(encoder, kind)
        known = self._read(file)
        keys = [text_key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in known}.items())
        if missing:
            fresh = encoder.encode(
                [t for _, t in missing],
                kind=kind,
                batch_size=batch_size,
                show_progress=show_progress,
            )
            known.update({k: v for (k, _), v in zip(missing, fresh)})
            self.directory.mkdir(parents=True, exist_ok=True)
            all_keys = list(known)
            tmp = file.with_suffix(".tmp.npz")
            np.savez(
                tmp,
                keys=np.asarray(all_keys, dtype=str),
                vectors=np.stack([known[k] for k in all_keys]),
            )
            tmp.replace(file)
        if not texts:
            return np.zeros((0, encoder.dim), dtype=np.float32)
        return np.stack([known[k] for k in keys]).astype(np.float32)


def encode_texts(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    kind: TextKind = "passage",
    cache: EmbeddingCache | None = None,
    show_progress: bool = False,
) -> np.ndarray:
    """Encode through ``cache`` when one is given, directly otherwise."""
    if cache is not None:
        return cache.encode(encoder, texts, kind=kind, show_progress=show_progress)
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return encoder.encode(texts, kind=kind, show_progress=show_progress)
