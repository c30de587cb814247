"""The store: one SQLAlchemy engine, migrated at start-up, with small typed read/write calls.

SQLite (a file, WAL journal) is the default; any SQLAlchemy URL works, PostgreSQL included
(``postgresql+psycopg://...``). Every write call takes the session of a transaction opened with
:meth:`Store.transaction`, so a batch is all-or-nothing.

Stored text is private: SQL parameters never reach a log line or an exception message
(``hide_parameters``), and database errors leave the store as :class:`StoreUnavailable` (the
database cannot be reached) or a ``ValueError`` (it refused a value), naming only the error's
kind. On SQLite, deleted rows are overwritten (``secure_delete``) and forgetting a user
checkpoints the write-ahead log, so the forgotten text is in neither file afterwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, Text, cast, create_engine, delete, event, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError as SQLDataError
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from coldbrew.courtesy import PIECE, pause, pausing
from coldbrew.store.codec import check_dtype, decode_rows, encode_rows
from coldbrew.store.records import Interaction, Item, User
from coldbrew.store.rows import empty_rows, read_rows
from coldbrew.store.sqlitefile import SqliteFile
from coldbrew.store.tables import InteractionRow, ItemRow, ModelVersionRow, UserRow, VectorRow

MIGRATIONS = Path(__file__).parent / "migrations"
_CHUNK = 500
# SQLite's synchronous setting per durability mode: in WAL mode NORMAL may lose the last commits
# on a power loss or OS crash (never on a crash of the process alone) and never corrupts; FULL
# syncs the log on every commit, so an acknowledged commit survives a power loss too.
SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL"}
log = logging.getLogger("coldbrew.store")


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or is busy (the service answers 503)."""


def _kind(exc: DBAPIError) -> str:
    """An error's class and SQLSTATE: what a message may say without quoting any value."""
    code = getattr(exc.orig, "sqlstate", None)
    name = type(exc.orig).__name__
    return f"{name} {code}" if code else name


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn driver errors into :class:`StoreUnavailable` or ``ValueError``, dropping their text
    (a driver's message may quote a stored value: "Key (user_id)=(...) already exists")."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise StoreUnavailable(f"the database is unavailable ({_kind(exc)})") from None
    except (SQLDataError, IntegrityError) as exc:
        raise ValueError(f"the database refused a value ({_kind(exc)})") from None


SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
"""URL schemes coldbrew stores to: SQLite (also a plain file path) and PostgreSQL."""


class UnsupportedDatabase(ValueError):
    """A database URL whose kind coldbrew cannot store to (the message names the ones it can)."""


def database_url(value: str) -> str:
    """A SQLAlchemy URL from a URL or a plain file path (which means SQLite).

    Raises :class:`UnsupportedDatabase` for any other kind of database (``mysql://``...), named
    by its scheme alone: the rest of the URL may hold a password."""
    if "://" not in value:
        return f"sqlite:///{value}"
    scheme = value.split("://", 1)[0].lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise UnsupportedDatabase(
            f"unsupported database {scheme}://: coldbrew stores to SQLite (a file path or "
            "sqlite:///PATH) or PostgreSQL (postgresql://USER:PASSWORD@HOST/DATABASE)"
        )
    if scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    return value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, durability: str) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}")
    cursor.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed, not left in free pages
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revisions shipped in the package (every head:
    independent features may each add a revision after the same parent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


def _interaction(row: InteractionRow) -> Interaction:
    """The record of a stored interaction (its context, if it had one)."""
    context = dict(row.context) if row.context else None
    return Interaction(
        row.interaction_id, row.user_id, row.item_id, row.event, row.timestamp, row.value, context
    )


_INTERACTION_COLUMNS = (
    InteractionRow.interaction_id,
    InteractionRow.user_id,
    InteractionRow.item_id,
    InteractionRow.event,
    InteractionRow.timestamp,
    InteractionRow.value,
    cast(InteractionRow.context, Text),
)
"""An interaction's columns in :class:`~coldbrew.store.records.Interaction`'s order, the context
as its JSON text: decoded by :func:`_context`, not per row by the column type."""


def _context(raw: str | None) -> dict[str, Any] | None:
    """A stored context from its JSON text (SQL or JSON null, and ``{}``: none)."""
    if raw is None or raw == "null":  # most events say nothing: nothing to parse
        return None
    return json.loads(raw) or None


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


Row = TypeVar("Row")


def _flushed_in_pieces(session: Session, rows: Sequence[Row]) -> Iterator[Row]:
    """``rows``; where writes step aside for reads (:mod:`coldbrew.courtesy`), the session is
    flushed and paused every :data:`~coldbrew.courtesy.PIECE` rows, inside its transaction,
    so the ORM's work for a 1,000-row batch is not one 100-ms piece at the commit."""
    cut = pausing()
    for n, row in enumerate(rows):
        if cut and n and n % PIECE == 0:
            session.flush()
            pause(n)
        yield row


class Store:
    """Durable items, users, interactions and vectors behind one SQLAlchemy engine."""

    def __init__(
        self, url: str, *, durability: str = "normal", vector_dtype: str = "float32"
    ) -> None:
        """``durability``: ``normal`` or ``full``, SQLite's ``synchronous`` (see
        :data:`SYNCHRONOUS`); PostgreSQL keeps its own settings. ``vector_dtype``: the format
        new vectors are written in (:mod:`coldbrew.store.codec`); rows of every format read
        back alike."""
        if durability not in SYNCHRONOUS:
            raise ValueError(f"durability {durability!r}: choose one of {', '.join(SYNCHRONOUS)}")
        self.url = database_url(url)
        self.durability = durability
        self.vector_dtype = check_dtype(vector_dtype)
        # parameters (user text) stay out of every log line and exception message
        kwargs: dict[str, Any] = {"hide_parameters": True}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True  # a database back after an outage is used at once
        self.engine = create_engine(self.url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", partial(_sqlite_pragmas, durability=durability))
        migrate(self.engine)
        self.file = SqliteFile.opened_by(self.engine)  # SQLite: the file a write must go to
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose writes commit together at the end, or not at all.

        Database errors leave as :class:`StoreUnavailable` or ``ValueError`` (see
        :func:`database_errors`), as does a SQLite file that is no longer the one opened (see
        :meth:`check_file`); a transaction that forgot a user checkpoints the log after it
        commits.
        """
        with database_errors():
            with self._sessions.begin() as session:
                yield session
                self.check_file()  # last, before the commit: a refusal rolls it back
            if session.info.pop("checkpoint", False):
                self.checkpoint()

    def check_file(self) -> None:
        """SQLite: raise :class:`StoreUnavailable` if the file at the path is no longer the file
        opened (deleted, replaced, truncated or overwritten: :mod:`coldbrew.store.sqlitefile`),
        so nothing is acknowledged that went into a file nobody reads again."""
        problem = None if self.file is None else self.file.problem()
        if problem is not None:
            raise StoreUnavailable(f"the database is unavailable: {problem} since it was opened")

    def ping(self) -> bool:
        """Whether the database answers now (and, on SQLite, is still the file opened)."""
        try:
            self.check_file()
            with database_errors(), self.engine.connect() as connection:
                return connection.execute(text("SELECT 1")).scalar() == 1
        except StoreUnavailable:
            return False

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database file and truncate it, so deleted
        text no longer sits in the log (``secure_delete`` has zeroed it in the file)."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as connection:
            busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        if busy:
            log.warning("the WAL checkpoint after a forget was blocked by a reader; it runs later")

    # ---- writes (inside a transaction) ----------------------------------------------------
    def upsert_items(self, session: Session, items: Sequence[Item]) -> None:
        """Insert or replace ``items`` (an id named twice keeps its last row)."""
        rows = {
            i.item_id: {
                "item_id": i.item_id,
                "title": i.title,
                "description": i.description,
                "attributes": dict(i.attributes),
            }
            for i in items
        }
        self._upsert(session, ItemRow, "item_id", list(rows.values()))

    def upsert_users(self, session: Session, users: Sequence[User]) -> None:
        """Insert or replace ``users``' text and attributes (an id named twice keeps its last)."""
        rows = {
            u.user_id: {"user_id": u.user_id, "text": u.text, "attributes": dict(u.attributes)}
            for u in users
        }
        self._upsert(session, UserRow, "user_id", list(rows.values()))

    def _upsert(self, session: Session, table: Any, key: str, rows: list[dict[str, Any]]) -> None:
        """One ``INSERT ... ON CONFLICT (key) DO UPDATE`` a piece of rows (both databases
        speak it): a 1,000-row batch went through the ORM's change tracking in ~150 ms of
        Python, here in a fraction, with a pause point between pieces
        (:mod:`coldbrew.courtesy`)."""
        dialect_insert = sqlite_insert if self.engine.dialect.name == "sqlite" else pg_insert
        stmt = dialect_insert(table)
        changed = {c: stmt.excluded[c] for c in rows[0] if c != key} if rows else {}
        stmt = stmt.on_conflict_do_update(
            index_elements=[key], set_={**changed, "updated_at": func.now()}
        )
        for start in range(0, len(rows), PIECE):
            pause()
            session.execute(stmt, rows[start : start + PIECE])

    def upsert_interactions(self, session: Session, interactions: Sequence[Interaction]) -> None:
        ids = [i.interaction_id for i in interactions]
        existing = self._existing(session, InteractionRow, InteractionRow.interaction_id, ids)
        for inter in _flushed_in_pieces(session, interactions):
            row = existing.get(inter.interaction_id)
            if row is None:
                row = InteractionRow(interaction_id=inter.interaction_id)
                session.add(row)
                existing[inter.interaction_id] = row
            row.user_id, row.item_id, row.event = inter.user_id, inter.item_id, inter.event
            row.value, row.timestamp = inter.value, inter.timestamp
            row.context = dict(inter.context) if inter.context else None

    def put_vectors(
        self, session: Session, kind: str, model: str, ids: Sequence[str], vectors: np.ndarray
    ) -> None:
        """Replace the ``kind`` vectors of ``ids`` made by ``model`` (written in the store's
        :attr:`vector_dtype`)."""
        if not len(ids):
            return
        self.delete_vectors(session, kind, ids, model=model)
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        dim, dtype = int(vectors.shape[1]), self.vector_dtype
        rows = [
            {"kind": kind, "owner_id": i, "model": model, "dim": dim, "data": d, "dtype": dtype}
            for i, d in zip(ids, encode_rows(vectors, dtype))
        ]
        for start in range(0, len(rows), 10 * _CHUNK):
            pause()
            session.execute(insert(VectorRow), rows[start : start + 10 * _CHUNK])

    def delete_vectors(
        self, session: Session, kind: str, ids: Sequence[str], *, model: str | None = None
    ) -> None:
        for chunk in _chunks(list(ids)):
            stmt = delete(VectorRow).where(VectorRow.kind == kind, VectorRow.owner_id.in_(chunk))
            if model is not None:
                stmt = stmt.where(VectorRow.model == model)
            session.execute(stmt)

    def delete_items(self, session: Session, item_ids: Sequence[str]) -> None:
        for chunk in _chunks(list(item_ids)):
            session.execute(delete(ItemRow).where(ItemRow.item_id.in_(chunk)))
        self.delete_vectors(session, "item", item_ids)

    def forget_user(self, session: Session, user_id: str) -> None:
        """Remove the user's profile, attributes, interactions and vectors (every user kind);
        on SQLite the log is checkpointed once the transaction commits."""
        session.info["checkpoint"] = True
        session.execute(delete(UserRow).where(UserRow.user_id == user_id))
        session.execute(delete(InteractionRow).where(InteractionRow.user_id == user_id))
        session.execute(
            delete(VectorRow).where(VectorRow.kind.like("user%"), VectorRow.owner_id == user_id)
        )

    def delete_interactions(self, session: Session, interaction_ids: Sequence[str]) -> None:
        for chunk in _chunks(list(interaction_ids)):
            session.execute(delete(InteractionRow).where(InteractionRow.interaction_id.in_(chunk)))

    def register_model(self, session: Session, name: str, config: dict[str, Any], dim: int) -> None:
        if session.scalar(select(ModelVersionRow).where(ModelVersionRow.name == name)) is None:
            session.add(ModelVersionRow(name=name, config=config, dim=dim))

    # ---- reads ----------------------------------------------------------------------------
    def items(self) -> list[Item]:
        """Every item, in insertion order."""
        return list(self.iter_items())

    def iter_items(self, batch: int = 10_000) -> Iterator[Item]:
        """Every item, in insertion order, read ``batch`` rows at a time (plain rows, not ORM
        objects, and never all at once: a million items load without holding a million
        records or a session's identity map)."""
        columns = (ItemRow.item_id, ItemRow.title, ItemRow.description, ItemRow.attributes)
        with database_errors(), self.engine.connect() as connection:
            streamed = connection.execution_options(yield_per=batch)
            for i, title, text, attrs in streamed.execute(select(*columns).order_by(ItemRow.pk)):
                yield Item(i, title, text, dict(attrs))

    def users(self) -> list[User]:
        with self._sessions() as session:
            rows = session.scalars(select(UserRow).order_by(UserRow.pk))
            return [User(r.user_id, r.text, dict(r.attributes)) for r in rows]

    def interactions(self, user_id: str | None = None) -> list[Interaction]:
        """Interactions oldest first (by timestamp, then insertion order)."""
        stmt = select(*_INTERACTION_COLUMNS).order_by(InteractionRow.timestamp, InteractionRow.pk)
        if user_id is not None:
            stmt = stmt.where(InteractionRow.user_id == user_id)
        with database_errors(), self.engine.connect() as connection:  # plain rows, no ORM
            return [
                Interaction(i, u, item, event, ts, value, _context(context))
                for i, u, item, event, ts, value, context in connection.execute(stmt)
            ]

    def vectors(self, kind: str, model: str) -> dict[str, np.ndarray]:
        """``{owner id: float32 vector}`` for one kind and model (any stored format)."""
        out: dict[str, np.ndarray] = {}
        for owners, block in self._vector_blocks(kind, model, np.dtype(np.float32)):
            out.update(zip(owners, block))
        return out

    def vector_matrix(
        self, kind: str, model: str, ids: Sequence[str], dtype: Any = np.float32
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``kind`` vectors of ``ids`` by ``model`` as one matrix, read in bulk (a block of
        rows at a time, so a million vectors never sit in memory twice).

        Returns
        -------
        matrix : np.ndarray
            Shape ``(len(ids), dim)`` in ``dtype`` (float32, or float16 for a compact copy, or
            int8: :class:`~coldbrew.store.rows.Int8Rows`, its stored codes as they are, rows
            stored in another format quantised a block at a time); rows of ids without a
            stored vector are zeros.
        found : np.ndarray
            Boolean, per id: whether it had a stored vector.
        """
        position = {owner: n for n, owner in enumerate(ids)}
        found = np.zeros(len(ids), dtype=bool)
        matrix = empty_rows(len(ids), 0, dtype)
        for owners, block in self._vector_blocks(kind, model, np.dtype(dtype)):
            if matrix.shape[1] != block.shape[1]:
                if found.any():
                    raise ValueError(f"{kind} vectors of {model!r} have several lengths")
                matrix = empty_rows(len(ids), block.shape[1], dtype)
            where = np.fromiter((position.get(o, -1) for o in owners), np.int64, len(owners))
            keep = where >= 0
            matrix[where[keep]] = block.take(np.flatnonzero(keep), axis=0)
            found[where[keep]] = True
        return matrix, found

    def _vector_blocks(
        self, kind: str, model: str, dtype: np.dtype[Any], size: int = 50_000
    ) -> Iterator[tuple[list[str], Any]]:
        """Owners and their vectors in ``dtype``, ``size`` rows of one format at a time
        (``dtype`` int8: rows stored as int8 come as :class:`~coldbrew.store.rows.Int8Rows`,
        other formats as float32)."""
        stmt = select(VectorRow.owner_id, VectorRow.dtype, VectorRow.dim, VectorRow.data).where(
            VectorRow.kind == kind, VectorRow.model == model
        )
        with database_errors(), self.engine.connect() as connection:
            result = connection.execution_options(yield_per=size).execute(stmt)
            for part in result.partitions(size):
                groups: dict[tuple[str, int], tuple[list[str], list[bytes]]] = {}
                for owner, fmt, dim, data in part:
                    owners, blobs = groups.setdefault((fmt, dim), ([], []))
                    owners.append(owner)
                    blobs.append(data)
                for (fmt, dim), (owners, blobs) in groups.items():
                    yield owners, read_rows(blobs, fmt, dim, dtype)

    def model_versions(self) -> list[dict[str, Any]]:
        with self._sessions() as session:
            rows = session.scalars(select(ModelVersionRow).order_by(ModelVersionRow.pk))
            return [{"name": r.name, "config": r.config, "dim": r.dim} for r in rows]

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self._sessions() as session:
            return {
                table.__tablename__: int(
                    session.scalar(select(func.count()).select_from(table)) or 0
                )
                for table in (ItemRow, UserRow, InteractionRow, VectorRow)
            }

    # ---- reads of a few rows (a replica applying another's writes) -----------------------
    def items_of(self, ids: Sequence[str]) -> list[Item]:
        """The items of ``ids`` that exist (any order)."""
        with self._sessions() as session:
            rows = self._rows(session, select(ItemRow), ItemRow.item_id, ids)
            return [Item(r.item_id, r.title, r.description, dict(r.attributes)) for r in rows]

    def users_of(self, ids: Sequence[str]) -> list[User]:
        """The users of ``ids`` that exist (any order)."""
        with self._sessions() as session:
            rows = self._rows(session, select(UserRow), UserRow.user_id, ids)
            return [User(r.user_id, r.text, dict(r.attributes)) for r in rows]

    def interactions_of(self, user_ids: Sequence[str]) -> list[Interaction]:
        """The interactions of ``user_ids``, oldest first (by timestamp, then insertion order)."""
        with self._sessions() as session:
            rows = self._rows(session, select(InteractionRow), InteractionRow.user_id, user_ids)
            rows.sort(key=lambda r: (r.timestamp, r.pk))
            return [_interaction(r) for r in rows]

    def vectors_of(self, kind: str, model: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """``{owner id: float32 vector}`` of ``ids`` for one kind and model (those stored, in
        any stored format)."""
        stmt = select(VectorRow.owner_id, VectorRow.dtype, VectorRow.dim, VectorRow.data).where(
            VectorRow.kind == kind, VectorRow.model == model
        )
        with self.engine.connect() as connection:
            return {
                owner: decode_rows([data], dtype, dim)[0]
                for chunk in _chunks(list(dict.fromkeys(ids)))
                for owner, dtype, dim, data in connection.execute(
                    stmt.where(VectorRow.owner_id.in_(chunk))
                )
            }

    @staticmethod
    def _rows(session: Session, stmt: Any, column: Any, ids: Sequence[str]) -> list[Any]:
        """The rows of ``stmt`` whose ``column`` is in ``ids`` (read in chunks)."""
        return [
            row
            for chunk in _chunks(list(dict.fromkeys(ids)))
            for row in session.scalars(stmt.where(column.in_(chunk)))
        ]

    @staticmethod
    def _existing(session: Session, table: Any, column: Any, ids: Iterable[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for chunk in _chunks(list(dict.fromkeys(ids))):
            for row in session.scalars(select(table).where(column.in_(chunk))):
                found[getattr(row, column.key)] = row
        return found
