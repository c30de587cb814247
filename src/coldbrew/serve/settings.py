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
``COLDBREW_MODEL``       ``hybrid`` (default: the service trains its own hybrid from its
                         interactions and refits it in the background), ``zeroshot`` (the
                         language model alone, never refitted) or a saved model's directory
``COLDBREW_MODELS_DIR``  where model versions are written (default: next to a SQLite file,
                         ``<db>.models``; else ``.coldbrew/models/<hash of the database URL>``)
``COLDBREW_REFIT_EVERY`` refit after this many new interactions (default 1000; 0: never)
``COLDBREW_REFIT_MINUTES``  refit this long after the last one if interactions arrived since
                         (default 60; 0: never)
``COLDBREW_REFIT_MIN_INTERACTIONS``  no refit before this many positive events (default 50)
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    model: str = "hybrid"
    models_dir: str | None = None
    refit_every: int = 1000
    refit_minutes: float = 60.0
    refit_min_interactions: int = 50

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
            "model": env.get("COLDBREW_MODEL", "hybrid"),
            "models_dir": env.get("COLDBREW_MODELS_DIR") or None,
            "refit_every": _number(env, "COLDBREW_REFIT_EVERY", 1000, int),
            "refit_minutes": _number(env, "COLDBREW_REFIT_MINUTES", 60.0, float),
            "refit_min_interactions": _number(env, "COLDBREW_REFIT_MIN_INTERACTIONS", 50, int),
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

    def models_path(self) -> str:
        """Where model versions live: as configured, else beside a SQLite file, else under
        ``.coldbrew/models`` by a hash of the database URL."""
        if self.models_dir:
            return self.models_dir
        graph = Settings(db_url=self.db_url).graph_path()
        if graph is not None:
            return graph[: -len(".hnsw")] + ".models"
        digest = hashlib.sha256(self.db_url.encode()).hexdigest()[:12]
        return os.path.join(".coldbrew", "models", digest)

    def __post_init__(self) -> None:
        if self.refit_every < 0 or self.refit_minutes < 0 or self.refit_min_interactions < 0:
            raise ValueError(
                "refit_every, refit_minutes and refit_min_interactions must not be negative, got "
                f"{self.refit_every}, {self.refit_minutes}, {self.refit_min_interactions}"
            )

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


def _number(env: Mapping[str, str], name: str, default: float, kind: type) -> Any:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def _matches(key: str, hashes: frozenset[str]) -> bool:
    presented = hash_key(key)
    found = False
    for known in hashes:
        found |= hmac.compare_digest(presented, known)
    return found
