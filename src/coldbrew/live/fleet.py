"""Replicas: several ``coldbrew serve`` processes over one PostgreSQL database, one state.

Each replica keeps the whole state in memory, as a single process does, and keeps it equal to
the others' through the database (see :mod:`coldbrew.store.changes`):

- every write logs a change (kind and ids) in its own transaction; the commit notifies the
  fleet's channel (``LISTEN``/``NOTIFY``);
- a background thread per replica waits on that channel, polling the log every
  :data:`POLL_SECONDS` too (a lost notification costs at most one poll), and applies the
  changes other replicas made by re-reading the rows they touched, stored vectors included
  (nothing is re-encoded), under the engine's write lock;
- a replica starts by noting the log's last id, then reads everything, then follows the log from
  that id (what lands in between is applied twice, to the same end);
- one replica, the holder of a session-level advisory lock, is the fleet's trainer: only it
  refits, and it publishes each new model version's files (JSON and ``.npz``) into the database,
  where every replica reads them (replicas may run on different machines); if it dies, its
  connection closes, the lock is free, and the next replica to ask becomes the trainer;
- the log keeps the last hour (and at least the last :data:`KEEP_LAST` changes).

SQLite serves one process: :func:`single_process` refuses a second one on the same file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from coldbrew.courtesy import pause, stepping_aside
from coldbrew.live.refitter import Refitter
from coldbrew.live.versions import META, ModelVersions, VersionInfo
from coldbrew.store.changes import Change, ChangeLog, own_changes_through

if TYPE_CHECKING:
    from coldbrew.store import Store


class Follows(Protocol):
    """What a replica does to the running recommender it keeps in step with the others."""

    info: VersionInfo
    refitter: Refitter | None
    ready: bool

    def refresh_items(self, item_ids: Sequence[str]) -> None: ...

    def refresh_users(self, user_ids: Sequence[str]) -> None: ...

    def refit(self, *, forced: bool = False) -> str: ...

    def serve_version(self, version: str) -> None: ...

    def resume_refits(self) -> None: ...


POLL_SECONDS = 0.5
"""The longest a replica waits for a notification before it reads the log anyway."""
RETAIN_SECONDS = 3600.0
KEEP_LAST = 10_000
PRUNE_EVERY = 60.0
SHARED_SUFFIXES = (".json", ".npz")
FORGET_PENDING = "forget_pending"
log = logging.getLogger("coldbrew.live.fleet")


class DatabaseInUse(RuntimeError):
    """Another process serves this SQLite file."""


def is_shared(store: Store) -> bool:
    """Whether replicas can share ``store`` (PostgreSQL) rather than one process (SQLite)."""
    return store.engine.dialect.name == "postgresql"


# ---- SQLite: one process ---------------------------------------------------------------------
_held: dict[str, tuple[IO[str], int]] = {}
_held_lock = threading.Lock()


@contextlib.contextmanager
def single_process(url: str) -> Iterator[None]:
    """Hold ``<db>.lock`` (an exclusive ``flock``) while serving the SQLite file of ``url`` (a
    SQLAlchemy URL; other databases: nothing); a second process on the same file gets
    :class:`DatabaseInUse`. Nested holds in one process share the lock."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        yield
        return
    path = os.path.abspath(database) + ".lock"
    _acquire(path)
    try:
        yield
    finally:
        _release(path)


def _acquire(path: str) -> None:
    with _held_lock:
        if path in _held:
            handle, count = _held[path]
            _held[path] = (handle, count + 1)
            return
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process's serving
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "unknown"
            handle.close()
            raise DatabaseInUse(
                f"{path[: -len('.lock')]} is served by another process (pid {other}): SQLite "
                "serves one process at a time; run several replicas over PostgreSQL "
                "(docs/service.md, 'Running several replicas')"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        _held[path] = (handle, 1)


def _release(path: str) -> None:
    with _held_lock:
        handle, count = _held[path]
        if count > 1:
            _held[path] = (handle, count - 1)
            return
        del _held[path]
        handle.close()  # closing the file releases the flock


# ---- model versions in the database ----------------------------------------------------------
class SharedVersions(ModelVersions):
    """Model versions whose files live in the database; ``root`` is this replica's local copy
    (a model loads from a directory). The version to serve is the fleet's, not a local file."""

    def __init__(self, root: str | Path, changes: ChangeLog) -> None:
        super().__init__(root)
        self.changes = changes

    def current(self) -> str | None:
        version = self.changes.state("model")
        if version is None or not self.download(version):
            return None
        return version

    def download(self, version: str) -> bool:
        """Copy a version's files here unless present; False if the database no longer has
        it (a newer version replaced it)."""
        target = self.path(version)
        if (target / META).exists():
            return True
        files = self.changes.files(version)
        if META not in files:
            return False
        staged = self.staging()
        for name, data in files.items():
            path = (staged / name).resolve()
            if staged.resolve() not in path.parents:
                raise ValueError(f"model file {name!r} of {version} is outside its directory")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        shutil.rmtree(target, ignore_errors=True)
        staged.rename(target)
        return True

    def publish(self, version: str) -> None:
        """Store the version's files in the database and make it the fleet's, in one
        transaction that notifies every replica."""
        files = _read_files(self.path(version))
        with self.changes.store.transaction() as session:
            self.changes.put_files(session, version, files)
            self.changes.set_state(session, "model", version)
            if self.info(version).forced:  # the refit forget-user owed is served
                self.changes.set_state(session, FORGET_PENDING, "0")
            self.changes.record(session, "model", [version])
        super().publish(version)

    def replace(self, version: str, write: Callable[[Path], None], *, share: bool = True) -> None:
        """Rewrite ``version`` here; with ``share`` (the replica that forgot a user) in the
        database too, where every older version's files are deleted (newer ones are a refit's,
        made without the user)."""
        super().replace(version, write)
        if not share:
            return
        files = _read_files(self.path(version))
        newer = {v for v in self.changes.versions() if v > version}
        with self.changes.store.transaction() as session:
            self.changes.delete_files(session, newer)
            self.changes.put_files(session, version, files)

    def prune(self, keep: set[str]) -> list[str]:
        """Delete every other version, here and in the database (the trainer's call)."""
        gone = super().prune(keep)
        with self.changes.store.transaction() as session:
            self.changes.delete_files(session, keep)
        return gone

    def drop_local(self, keep: set[str]) -> list[str]:
        """Delete local copies of every other version (a follower's call)."""
        return super().prune(keep)


def _read_files(root: Path) -> dict[str, bytes]:
    """A version directory's files by relative path (only JSON and ``.npz`` are shared)."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix not in SHARED_SUFFIXES:
            raise ValueError(f"model file {path.name!r}: only JSON and .npz are shared")
        files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def _replica_dir(root: Path, name: str) -> Path:
    """This replica's model directory under ``root``; those of dead processes on this host
    (killed before they could remove theirs) are removed."""
    host = socket.gethostname()
    if root.exists():
        for path in root.glob(f"replica-{host}-*"):
            pid = path.name[len(f"replica-{host}-") :].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)
    return root / f"replica-{name}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _no_pause() -> None:
    """No reads to wait for (outside the service)."""


# ---- following the fleet ---------------------------------------------------------------------
class Fleet:
    """This replica's link to the others: the change log it writes and follows, the trainer
    election, and the shared model versions."""

    def __init__(self, store: Store, *, name: str | None = None, poll: float = POLL_SECONDS):
        if not is_shared(store):
            raise ValueError(f"replicas need PostgreSQL, not {store.engine.dialect.name}")
        self.store = store
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.log = ChangeLog(store, self.name)
        self.poll = poll
        self.seen = 0
        self.applied = 0
        self.last_lag = 0.0
        self.behind = False
        self.engine: Follows | None = None
        self.shared_versions: SharedVersions | None = None
        self._conninfo = store.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._listen: Any = None
        self._lock_conn: Any = None
        self._trainer = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned = 0.0
        self._read_at = self._elected = -math.inf  # when the log was last read, the lock asked
        self.step_aside: Callable[[], None] = _no_pause
        """Called between this replica's pieces of background work while the service runs:
        the service's :meth:`~coldbrew.serve.fair.WritePace.step_aside`, so that catching up
        waits for the reads in flight, as writes do (:mod:`coldbrew.courtesy`)."""

    def versions(self, root: str) -> SharedVersions:
        self.shared_versions = SharedVersions(_replica_dir(Path(root), self.name), self.log)
        return self.shared_versions

    def mark(self) -> None:
        """Note where the log stands (before the engine reads the database)."""
        self.seen = self.log.last_id()

    def start(self, engine: Follows) -> None:
        """Listen, apply what landed since :meth:`mark`, stand for trainer, then follow."""
        self.engine = engine
        self._connect()
        self.catch_up()
        self._elect()
        self._thread = threading.Thread(target=self._run, name="coldbrew-fleet", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._disconnect()
        if self.shared_versions is not None:
            shutil.rmtree(self.shared_versions.root, ignore_errors=True)

    def is_trainer(self) -> bool:
        return self._trainer

    def forgot(self, session: Any) -> None:
        """Note, in a forget-user's transaction, that the fleet owes a forced refit (a trainer
        elected before it is served runs it)."""
        self.log.set_state(session, FORGET_PENDING, "1")

    def ask_trainer(self, *, forced: bool) -> str:
        """Ask the fleet's trainer for a refit (through the log); returns ``requested``."""
        with self.store.transaction() as session:
            self.log.record(session, "refit", ["forced"] if forced else [])
        return "requested"

    # ---- the follower thread ----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                connected = self._listen is not None
                if not connected:
                    self._connect()
                    self._check_retention()
                notified = self._wait()
                with stepping_aside(self.step_aside):
                    pause()  # reads in flight first: this thread's work waits for them
                    if not (connected and self._only_own(notified)):
                        self.catch_up()
                    if time.monotonic() - self._elected >= self.poll:
                        self._elect()
                    self._prune()
            except Exception as exc:  # the database went away: reconnect and catch up
                log.warning("replica sync paused (%s); retrying", type(exc).__name__)
                self._disconnect()
                self._stop.wait(1.0)

    def _connect(self) -> None:
        import psycopg
        from psycopg import sql

        self._listen = psycopg.connect(self._conninfo, autocommit=True)
        self._listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.log.channel)))

    def _disconnect(self) -> None:
        for conn in (self._listen, self._lock_conn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._listen = self._lock_conn = None
        self._trainer = False

    def _wait(self) -> list[str]:
        """Until a notification arrives or one poll interval passes; the payloads."""
        return [n.payload for n in self._listen.notifies(timeout=self.poll, stop_after=1)]

    def _only_own(self, notified: list[str]) -> bool:
        """Whether ``notified`` shows only this replica's own changes right after the last
        one seen (:func:`~coldbrew.store.changes.own_changes_through`), so there is nothing to
        apply and the log need not be read: then they count as seen. The log is read anyway
        once a poll interval, as when nothing is notified."""
        through = own_changes_through(notified, self.seen, self.name)
        if through is None or time.monotonic() - self._read_at >= self.poll:
            return False
        self.seen = through
        return True

    def catch_up(self) -> int:
        """Apply every change other replicas logged since the last one seen; return how many."""
        started = time.perf_counter()
        self._read_at = time.monotonic()
        changes = self.log.since(self.seen)
        if not changes:
            return 0
        theirs = [c for c in changes if c.origin != self.name]
        if theirs:
            self._apply(theirs)
            # from the oldest change's transaction to now: what this batch waited in all
            self.last_lag = max(c.age for c in theirs) + time.perf_counter() - started
        self.seen = changes[-1].id
        self.applied += len(theirs)
        return len(theirs)

    def _apply(self, changes: list[Change]) -> None:
        """State-based, so changes of one kind merge: re-read every touched row once."""
        engine = self.engine
        if engine is None:
            return
        items = [i for c in changes if c.kind == "items" for i in c.ids]
        users = [u for c in changes if c.kind == "users" for u in c.ids]
        models = [c.ids[0] for c in changes if c.kind == "model"]
        if items:
            engine.refresh_items(list(dict.fromkeys(items)))
        if users:
            engine.refresh_users(list(dict.fromkeys(users)))
        if models:
            self._serve(engine, models[-1])
        refits = [c for c in changes if c.kind == "refit"]
        if refits and self._trainer:
            engine.refit(forced=any(c.ids for c in refits))

    def _serve(self, engine: Follows, version: str) -> None:
        versions = self.shared_versions
        if versions is None or not versions.download(version):
            return  # already replaced by a newer version (its change follows)
        previous = engine.info.version
        engine.serve_version(version)
        # a forced version (forget-user) replaces every older one, here as in the database
        versions.drop_local({version} if engine.info.forced else {version, previous})

    # ---- the trainer ------------------------------------------------------------------------
    def _elect(self) -> None:
        """Take the trainer's lock if it is free (only where the engine refits)."""
        self._elected = time.monotonic()
        engine = self.engine
        if engine is None or engine.refitter is None:
            return
        import psycopg

        if self._lock_conn is None:
            self._lock_conn = psycopg.connect(self._conninfo, autocommit=True)
            self._trainer = False
        if self._trainer:
            self._lock_conn.execute("SELECT 1")  # a broken connection took the lock with it
            return
        got = self._lock_conn.execute(
            "SELECT pg_try_advisory_lock(%s)", (self.log.trainer_key,)
        ).fetchone()
        if got and got[0]:
            self._trainer = True
            log.info("replica %s is the fleet's trainer", self.name)
            engine.resume_refits()
            if self.log.state(FORGET_PENDING) == "1" and engine.refitter is not None:
                engine.refitter.request(forced=True, reason="forget-user")

    # ---- the log's length -------------------------------------------------------------------
    def _prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        if self._trainer or self.engine is None or self.engine.refitter is None:
            self.log.prune(RETAIN_SECONDS, KEEP_LAST)
        self._check_retention()

    def _check_retention(self) -> None:
        """A replica cut off for longer than the log keeps has missed changes: it stops
        reporting ready (``/readyz`` 503) and says to restart it."""
        pruned = int(self.log.state("pruned_through") or 0)
        if pruned > self.seen and not self.behind:
            self.behind = True
            if self.engine is not None:
                self.engine.ready = False
            log.error("replica %s missed changes the log no longer keeps: restart it", self.name)
