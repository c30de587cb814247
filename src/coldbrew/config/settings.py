"""Service settings, read from the environment in one place.

``COLDBREW_DB_URL``      database URL or SQLite file (default ``coldbrew.sqlite``)
``COLDBREW_ENCODER``     encoder spec for :func:`coldbrew.text.factory.make_encoder`; ``auto``
                         (default) picks one for the language of the items stored at start
``COLDBREW_API_KEYS``    comma-separated keys allowed to write; an entry ``sha256:<hex>`` gives a
                         key by its hash, so the plain key need not sit in the environment; a
                         plain key must pass :mod:`coldbrew.config.keys` (16+ visible ASCII
                         characters, ...), and a set but empty value is refused
``COLDBREW_READ_KEYS``   if set, reads need one of these keys (or a write key) too
``COLDBREW_MAX_BODY_BYTES``  largest request body accepted (default 1 MiB; larger: 413)
``COLDBREW_INDEX``       ``auto`` (default, when faiss is installed: exact below 20,000 items, an
                         HNSW graph above, and from 250,000 items at start-up IVF-PQ over
                         int8 rows), ``exact``, ``hnsw`` or ``ivfpq``
``COLDBREW_VECTOR_DTYPE``  how new item vectors are stored: ``float16`` (default; half the
                         size, cosines within ~1e-4), ``int8`` (a quarter, with a per-vector
                         scale) or ``float32``; rows of every format are read
``COLDBREW_ENCODER_RUNTIME``  ``auto`` (default: onnxruntime for sentence-transformers models when
                         it is installed, PyTorch otherwise), ``onnx``, ``torch`` or
                         ``onnx-int8`` (int8 weights: vectors within cosine 0.99 of the float
                         model's, stored under their own name; float onnx if its check fails)
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
``COLDBREW_RAY``         run refits as Ray tasks, and encode bulk item batches (256 texts or more)
                         with Ray Data, on this cluster: ``auto`` (``RAY_ADDRESS``, else
                         a cluster started with ``ray start`` here, else a new local one),
                         ``local`` or an address; unset (default): a child process of the service
``COLDBREW_SCORE_ALL_BELOW``  catalogues this large or larger score candidates, not every item
                         (default 50,000)
``COLDBREW_DURABILITY``  SQLite only: ``normal`` (default; a power loss may lose the last
                         commits, never corrupt) or ``full`` (every acknowledged commit survives)
``COLDBREW_RATE_LIMIT``  requests per client address without a valid key (default ``20/second``)
``COLDBREW_KEY_RATE_LIMIT``  requests per valid key (default ``200/second``)
``COLDBREW_RATE_LIMIT_DELAY``  seconds a 429 waits before it is sent (1; slows floods down)
``COLDBREW_FAILED_KEY_LIMIT``  tries of one wrong key before it gets 429s (default
                         ``10/minute``); a right key is never held back by wrong ones
``COLDBREW_HEADER_TIMEOUT``  seconds a connection may take to send its request headers (10)
``COLDBREW_BODY_TIMEOUT``  seconds a request may take to send its body (30)
``COLDBREW_MAX_QUEUE``   requests waiting for the encoder before new ones get 503 (32)
``COLDBREW_KEY_WRITES``  writes one key may have in progress before its next gets 429 (2)
``COLDBREW_WRITE_QUEUE`` writes in progress, all keys together, before the next gets 503 (8)
``COLDBREW_WRITE_CHUNK`` a write's item texts are encoded (in pieces of about 50 ms), and put
                         in memory, at most this many at a time, searches and text queries
                         going first between pieces (32)
``COLDBREW_WRITE_SHARE``  while reads are served, writes keep the service busy at most this
                         share of the time (0.25: a write of t seconds, then 3t of rest)
``COLDBREW_SWITCH_INTERVAL``  seconds a busy thread keeps Python's GIL while others wait
                         (``sys.setswitchinterval``, set by ``coldbrew serve``; 0.0005, Python's
                         own 0.005 let writes' threads hold the event loop back)
``COLDBREW_FORWARDED_ALLOW_IPS``  proxies whose ``X-Forwarded-For`` names the client (none)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from coldbrew.config.keys import MAKE_ONE, check_key
from coldbrew.store.codec import VECTOR_DTYPES

DEFAULT_MAX_BODY = 1 << 20
DURABILITY = ("normal", "full")
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _hash_entry(entry: str, variable: str, position: int) -> str:
    """One key entry's hash: ``sha256:<64 hex digits>`` as given, or a plain key hashed."""
    if entry.startswith("sha256:"):
        digest = entry[len("sha256:") :]
        if not _HEX.fullmatch(digest):
            raise ValueError(
                f"{variable} entry {position} is {entry[:20]!r}: a 'sha256:' entry needs the key's "
                'SHA-256 as 64 hex digits (python -c "import hashlib; print(hashlib.sha256('
                "b'KEY').hexdigest())\"); as it is, no key could match it"
            )
        return digest.lower()
    check_key(entry, variable, position)
    return hash_key(entry)


def _hashes(entries: Iterable[str], variable: str = "the keys") -> frozenset[str]:
    """Hashes of key entries (trimmed); a malformed or weak entry, an empty one included, is a
    ValueError naming it."""
    return frozenset(
        _hash_entry(entry.strip(), variable, position) for position, entry in enumerate(entries, 1)
    )


def _env_keys(env: Mapping[str, str], variable: str) -> frozenset[str]:
    """The hashes of a comma-separated key setting; unset gives none, set but empty is refused
    (it used to fall back in silence to a generated key, or to open reads)."""
    raw = env.get(variable)
    if raw is None:
        return frozenset()
    if not raw.replace(",", "").strip():
        raise ValueError(
            f"{variable} is set but holds no key: give at least one, or unset it; {MAKE_ONE}"
        )
    return _hashes(raw.split(","), variable)


def _check_rate(value: str, variable: str) -> None:
    from limits import parse

    try:
        parse(value)
    except ValueError:
        raise ValueError(
            f"{variable}={value!r}: give a rate such as '20/second' or '600/minute'"
        ) from None


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
    ray: str | None = None
    score_all_below: int = 50_000
    durability: str = "normal"
    vector_dtype: str = "float16"
    rate_limit: str = "20/second"
    key_rate_limit: str = "200/second"
    failed_key_limit: str = "10/minute"
    rate_limit_delay: float = 1.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_queue: int = 32
    key_writes: int = 2
    write_queue: int = 8
    write_chunk: int = 32
    switch_interval: float = 0.0005
    write_share: float = 0.25
    forwarded_allow_ips: str = ""

    def __post_init__(self) -> None:
        if self.durability not in DURABILITY:
            raise ValueError(
                f"COLDBREW_DURABILITY={self.durability!r}: choose one of {', '.join(DURABILITY)}"
            )
        if self.vector_dtype not in VECTOR_DTYPES:
            raise ValueError(
                f"COLDBREW_VECTOR_DTYPE={self.vector_dtype!r}: choose one of "
                + ", ".join(VECTOR_DTYPES)
            )
        _check_rate(self.rate_limit, "COLDBREW_RATE_LIMIT")
        _check_rate(self.key_rate_limit, "COLDBREW_KEY_RATE_LIMIT")
        _check_rate(self.failed_key_limit, "COLDBREW_FAILED_KEY_LIMIT")
        positive = ("header_timeout", "body_timeout", "max_queue", "max_body_bytes")
        for name in (*positive, "key_writes", "write_queue", "write_chunk"):
            if not getattr(self, name) > 0:
                raise ValueError(f"COLDBREW_{name.upper()}={getattr(self, name)!r}: must be > 0")
        for name in ("refit_every", "refit_minutes", "refit_min_interactions"):
            if getattr(self, name) < 0:
                raise ValueError(f"COLDBREW_{name.upper()}={getattr(self, name)!r}: must be >= 0")
        if self.model not in ("hybrid", "zeroshot") and not os.path.isfile(
            os.path.join(self.model, "config.json")
        ):
            raise ValueError(
                f"COLDBREW_MODEL={self.model!r}: choose hybrid, zeroshot or the directory of a "
                "saved model (no config.json there)"
            )
        if not 0 < self.write_share <= 1:
            raise ValueError(f"COLDBREW_WRITE_SHARE={self.write_share!r}: above 0, at most 1")
        if not 0 < self.switch_interval <= 1:
            raise ValueError(
                f"COLDBREW_SWITCH_INTERVAL={self.switch_interval!r}: between 0 and 1 second"
            )
        if not 0 <= self.rate_limit_delay <= 60:
            raise ValueError(
                f"COLDBREW_RATE_LIMIT_DELAY={self.rate_limit_delay!r}: between 0 and 60 seconds"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "db_url": env.get("COLDBREW_DB_URL", "coldbrew.sqlite"),
            "encoder": env.get("COLDBREW_ENCODER", "auto"),
            "write_key_hashes": _env_keys(env, "COLDBREW_API_KEYS"),
            "read_key_hashes": _env_keys(env, "COLDBREW_READ_KEYS"),
            "max_body_bytes": _number(env, "COLDBREW_MAX_BODY_BYTES", DEFAULT_MAX_BODY, int),
            "index": env.get("COLDBREW_INDEX", "auto"),
            "index_path": env.get("COLDBREW_INDEX_PATH") or None,
            "encoder_runtime": env.get("COLDBREW_ENCODER_RUNTIME", "auto"),
            "durability": env.get("COLDBREW_DURABILITY", "normal"),
            "vector_dtype": env.get("COLDBREW_VECTOR_DTYPE", "float16"),
            "rate_limit": env.get("COLDBREW_RATE_LIMIT", "20/second"),
            "key_rate_limit": env.get("COLDBREW_KEY_RATE_LIMIT", "200/second"),
            "failed_key_limit": env.get("COLDBREW_FAILED_KEY_LIMIT", "10/minute"),
            "rate_limit_delay": _number(env, "COLDBREW_RATE_LIMIT_DELAY", 1.0, float),
            "header_timeout": _number(env, "COLDBREW_HEADER_TIMEOUT", 10.0, float),
            "body_timeout": _number(env, "COLDBREW_BODY_TIMEOUT", 30.0, float),
            "max_queue": _number(env, "COLDBREW_MAX_QUEUE", 32, int),
            "key_writes": _number(env, "COLDBREW_KEY_WRITES", 2, int),
            "write_queue": _number(env, "COLDBREW_WRITE_QUEUE", 8, int),
            "write_chunk": _number(env, "COLDBREW_WRITE_CHUNK", 32, int),
            "write_share": _number(env, "COLDBREW_WRITE_SHARE", 0.25, float),
            "switch_interval": _number(env, "COLDBREW_SWITCH_INTERVAL", 0.0005, float),
            "forwarded_allow_ips": env.get("COLDBREW_FORWARDED_ALLOW_IPS", ""),
            "model": env.get("COLDBREW_MODEL", "hybrid"),
            "models_dir": env.get("COLDBREW_MODELS_DIR") or None,
            "refit_every": _number(env, "COLDBREW_REFIT_EVERY", 1000, int),
            "refit_minutes": _number(env, "COLDBREW_REFIT_MINUTES", 60.0, float),
            "refit_min_interactions": _number(env, "COLDBREW_REFIT_MIN_INTERACTIONS", 50, int),
            "ray": env.get("COLDBREW_RAY") or None,
            "score_all_below": _number(env, "COLDBREW_SCORE_ALL_BELOW", 50_000, int),
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

    def check_models_dir(self) -> None:
        """Raise ``ValueError`` (one line naming the setting) unless :meth:`models_path` is a
        writable directory or one that can be made; it used to end in a traceback at start."""
        path = self.models_path()
        problem = _directory_problem(path)
        if problem is not None:
            raise ValueError(
                f"the models directory {path!r} (--models-dir, COLDBREW_MODELS_DIR) {problem}"
            )

    @staticmethod
    def keys(*keys: str) -> frozenset[str]:
        """Hashes of plain keys (for building settings in code), checked as the environment's
        are (:mod:`coldbrew.config.keys`)."""
        return _hashes(keys)

    def knows(self, key: str | None) -> bool:
        """Whether ``key`` is any configured key (read or write)."""
        return key is not None and _matches(key, self.read_key_hashes | self.write_key_hashes)

    def can_write(self, key: str | None) -> bool:
        return key is not None and _matches(key, self.write_key_hashes)

    def can_read(self, key: str | None) -> bool:
        if not self.read_key_hashes:
            return True
        return key is not None and _matches(key, self.read_key_hashes | self.write_key_hashes)


def _directory_problem(path: str) -> str | None:
    """Why ``path`` cannot hold files (a phrase), or ``None``; makes nothing."""
    if os.path.isdir(path):
        return None if os.access(path, os.W_OK | os.X_OK) else "is not writable"
    if os.path.exists(path):
        return "is a file, not a directory"
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"cannot be made: {parent!r} is a file"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be made: {parent!r} is not writable"
    return None


def _number(env: Mapping[str, str], name: str, default: float, kind: type) -> Any:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: must be a number") from None


def _matches(key: str, hashes: frozenset[str]) -> bool:
    presented = hash_key(key)
    found = False
    for known in hashes:
        found |= hmac.compare_digest(presented, known)
    return found
