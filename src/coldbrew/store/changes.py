"""What replicas over one PostgreSQL database share: the change log, model files, fleet state.

Every write a replica commits adds one row to ``changes`` (its kind, the ids it touched, the
replica it came from) in the same transaction, under a transaction-level advisory lock taken
just before that row, so change ids increase in commit order: a reader that sees change ``n``
has every change below ``n`` that will ever commit. The row's commit also sends ``NOTIFY`` on the
fleet's channel with the change's id and origin (a replica need not read its own changes back).
Locks and the channel are named after the database and schema, so fleets in other schemas of the
same server do not meet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from coldbrew.store.tables import ChangeRow, FleetStateRow, ModelFileRow

if TYPE_CHECKING:
    from coldbrew.store.db import Store

KINDS = ("items", "users", "model", "refit")


@dataclass(frozen=True)
class Change:
    id: int
    kind: str
    ids: tuple[str, ...]
    origin: str
    age: float = 0.0  # seconds from its transaction's start to its reading (the database clock)


def own_changes_through(payloads: Sequence[str], seen: int, origin: str) -> int | None:
    """The last change id that notifications ``payloads`` (``"<id> <origin>"`` each, as
    :meth:`ChangeLog.record` sends them) show, where they show only ``origin``'s own changes,
    right after ``seen`` and with no gap (``seen + 1``, ``seen + 2``, ...): a replica has
    nothing to apply from them, so need not read the log. ``None``: read it (another
    replica's change, a gap, a payload of another form, or no notification at all)."""
    ids = []
    for payload in payloads:
        number, _, sender = payload.partition(" ")
        if not number.isdigit() or sender != origin:
            return None
        if int(number) > seen:
            ids.append(int(number))
    if not ids:
        return None
    ids.sort()
    return ids[-1] if ids == list(range(seen + 1, seen + 1 + len(ids))) else None


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class ChangeLog:
    """The change log, the shared model files and the fleet's state, over ``store``."""

    def __init__(self, store: Store, origin: str) -> None:
        self.store, self.origin = store, origin
        with store.engine.connect() as connection:
            scope = connection.execute(
                text("SELECT current_database() || '.' || current_schema()")
            ).scalar_one()
        self.order_key = lock_key(f"coldbrew-order:{scope}")
        self.trainer_key = lock_key(f"coldbrew-trainer:{scope}")
        self.channel = "coldbrew_" + hashlib.sha256(scope.encode()).hexdigest()[:16]

    # ---- the log --------------------------------------------------------------------------
    def record(self, session: Session, kind: str, ids: Sequence[str]) -> None:
        """Log a change in ``session``'s transaction (call it last: the order lock is held
        until the commit)."""
        if kind not in KINDS:
            raise ValueError(f"change kind {kind!r}: choose one of {', '.join(KINDS)}")
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.order_key})
        row = insert(ChangeRow).values(kind=kind, ids=list(ids), origin=self.origin)
        change_id = session.execute(row.returning(ChangeRow.id)).scalar_one()
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": self.channel, "payload": f"{change_id} {self.origin}"},
        )

    def last_id(self) -> int:
        with self.store.engine.connect() as connection:
            return int(connection.execute(select(func.max(ChangeRow.id))).scalar() or 0)

    def since(self, after: int, limit: int = 5000) -> list[Change]:
        """Changes after id ``after``, oldest first (at most ``limit``)."""
        age = func.extract("epoch", func.clock_timestamp() - ChangeRow.at)
        columns = (ChangeRow.id, ChangeRow.kind, ChangeRow.ids, ChangeRow.origin, age)
        stmt = select(*columns).where(ChangeRow.id > after).order_by(ChangeRow.id)
        with self.store.engine.connect() as connection:  # plain rows: no ORM objects to build
            return [
                Change(id_, kind, tuple(ids), origin, float(seconds))
                for id_, kind, ids, origin, seconds in connection.execute(stmt.limit(limit))
            ]

    def prune(self, keep_seconds: float, keep_last: int) -> int:
        """Delete changes older than ``keep_seconds`` beyond the newest ``keep_last``; the last
        deleted id is kept as ``pruned_through`` (a replica behind it missed changes)."""
        with self.store.transaction() as session:
            newest = session.scalar(select(func.max(ChangeRow.id))) or 0
            old = ChangeRow.at < func.now() - text(f"interval '{float(keep_seconds)} seconds'")
            cut = session.scalar(
                select(func.max(ChangeRow.id)).where(old, ChangeRow.id <= newest - keep_last)
            )
            if cut is None:
                return 0
            gone = session.scalar(select(func.count()).where(ChangeRow.id <= cut)) or 0
            session.execute(delete(ChangeRow).where(ChangeRow.id <= cut))
            self.set_state(session, "pruned_through", str(cut))
            return int(gone)

    # ---- shared state ---------------------------------------------------------------------
    def state(self, key: str) -> str | None:
        with self.store.transaction() as session:
            row = session.get(FleetStateRow, key)
            return row.value if row is not None else None

    @staticmethod
    def set_state(session: Session, key: str, value: str) -> None:
        row = session.get(FleetStateRow, key)
        if row is None:
            session.add(FleetStateRow(key=key, value=value))
        else:
            row.value = value

    # ---- model files ----------------------------------------------------------------------
    @staticmethod
    def put_files(session: Session, version: str, files: dict[str, bytes]) -> None:
        """Store a new version's files; a version already stored is never replaced (two
        trainers for a moment, after a lost connection: the second's publish fails)."""
        taken = session.scalar(select(func.count()).where(ModelFileRow.version == version))
        if taken:
            raise ValueError(f"model version {version} is already stored by another trainer")
        rows = [{"version": version, "path": p, "data": d} for p, d in files.items()]
        if rows:
            session.execute(insert(ModelFileRow), rows)

    def files(self, version: str) -> dict[str, bytes]:
        stmt = select(ModelFileRow.path, ModelFileRow.data).where(ModelFileRow.version == version)
        with self.store.engine.connect() as connection:
            return {path: bytes(data) for path, data in connection.execute(stmt)}

    def versions(self) -> list[str]:
        with self.store.engine.connect() as connection:
            stmt = select(ModelFileRow.version).distinct().order_by(ModelFileRow.version)
            return [v for (v,) in connection.execute(stmt)]

    @staticmethod
    def delete_files(session: Session, keep: set[str]) -> None:
        """Every version's files but ``keep``'s."""
        session.execute(delete(ModelFileRow).where(ModelFileRow.version.not_in(sorted(keep))))
