"""Embedding cache: vectors keyed by (encoder name, text kind, text hash), stored as ``.npz``.

A second run over an unchanged catalogue encodes nothing. One file per encoder and kind, so a
model change never serves stale vectors.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from coldbrew.text.encoder import Encoder, TextKind


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` between processes (``flock``; where there is none, such
    as on Windows, writers are not serialised and the last rename wins)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def text_digest(text: str) -> bytes:
    """The SHA-1 of ``text`` (UTF-8): what every text key is made from."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def text_key(text: str) -> str:
    """:func:`text_digest` in hex: the key of ``text`` in caches and catalogues."""
    return text_digest(text).hex()


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

    def _merge(self, file: Path, added: dict[str, np.ndarray]) -> None:
        """Add ``added`` to the file as it is now: another process (a parallel fit, a second
        ``coldbrew encode``) may have written it since it was read, and its vectors must not
        be lost. Writers take turns on a lock file; each writes a temporary file of its own
        and renames it into place, so a reader never sees half a file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with _locked(file.with_name(file.name + ".lock")):
            merged = {**self._read(file), **added}
            keys = list(merged)
            handle, tmp = tempfile.mkstemp(prefix=file.name, suffix=".tmp.npz", dir=file.parent)
            try:
                with os.fdopen(handle, "wb") as out:
                    np.savez(
                        out,
                        keys=np.asarray(keys, dtype=str),
                        vectors=np.stack([merged[k] for k in keys]),
                    )
                os.replace(tmp, file)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)

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
            added = {k: v for (k, _), v in zip(missing, fresh)}
            known.update(added)
            self._merge(file, added)
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
