"""Service settings, read from the environment in one place.

``COLDBREW_DB_URL``      database URL or SQLite file (default ``coldbrew.sqlite``)
``COLDBREW_ENCODER``     encoder spec for :func:`coldbrew.text.factory.make_encoder`; ``auto``
                         (default) picks one for the language of the items stored at start
``COLDBREW_API_KEYS``    comma-separated keys allowed to write; an entry ``sha256:<hex>`` gives a
                         key by its hash, so the plain key need not sit in the environment
``COLDBREW_READ_KEYS``   if set, reads need one of these keys (or a write key) too
``COLDBREW_MAX_BODY_BYTES``  largest request body accepted (default 1 MiB; larger: 413)
``COLDBREW_INDEX``       ``auto`` (default: faiss HNSW above 20,000 items when faiss is installed,
                         exact below), ``exact`` or ``hnsw``
``COLDBREW_ENCODER_RUNTIME``  ``auto`` (default: onnxruntime for sentence-transformers models when
                         it is installed, PyTorch otherwise), ``onnx`` or ``torch``
``COLDBREW_INDEX_PATH``  where the HNSW graph is saved for a fast restart (default: next to a
                         SQLite file, ``<db>.hnsw``; none for other databases)
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_MAX_BODY = 1 << 20


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _hashes(entries: Iterable[str]) -> frozenset[str]:
    out = set()
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        out.add(entry[len("sha256:") :].lower() if entry.startswith("sha256:") else hash_key(entry))
    return frozenset(out)


@dataclass(frozen=True)
class Settings:
    """What the service runs on. Keys are held only as SHA-256 hashes."""

    db_url: str = "coldbrew.sqlite"
    encoder: str = "auto"
    write_key_hashes: frozenset[str] = field(default_factory=frozenset)
    read_key_hashes: frozenset[str] = field(default_factory=frozenset)
    max_body_bytes: int = DEFAULT_MAX_BODY
    index: str = "auto"
    index_path: str | None = None
    encoder_runtime: str = "auto"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "db_url": env.get("COLDBREW_DB_URL", "coldbrew.sqlite"),
            "encoder": env.get("COLDBREW_ENCODER", "auto"),
            "write_key_hashes": _hashes(env.get("COLDBREW_API_KEYS", "").split(",")),
            "read_key_hashes": _hashes(env.get("COLDBREW_READ_KEYS", "").split(",")),
            "max_body_bytes": int(env.get("COLDBREW_MAX_BODY_BYTES", DEFAULT_MAX_BODY)),
            "index": env.get("COLDBREW_INDEX", "auto"),
            "index_path": env.get("COLDBREW_INDEX_PATH") or None,
            "encoder_runtime": env.get("COLDBREW_ENCODER_RUNTIME", "auto"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def graph_path(self) -> str | None:
        """The HNSW graph's file: as configured, else beside a SQLite database file."""
        if self.index_path:
            return self.index_path
        url = self.db_url
        if url.startswith("sqlite:///"):
            url = url[len("sqlite:///") :]
        if "://" in url or not url or ":memory:" in url:
            return None
        return url + ".hnsw"

    @staticmethod
    def keys(*keys: str) -> frozenset[str]:
        """Hashes of plain keys (for building settings in code)."""
        return _hashes(keys)

    def can_write(self, key: str | None) -> bool:
        return key is not None and _matches(key, self.write_key_hashes)

    def can_read(self, key: str | None) -> bool:
        if not self.read_key_hashes:
            return True
        return key is not None and _matches(key, self.read_key_hashes | self.write_key_hashes)


def _matches(key: str, hashes: frozenset[str]) -> bool:
    presented = hash_key(key)
    found = False
    for known in hashes:
        found |= hmac.compare_digest(presented, known)
    return found
