"""Durable storage: SQLite by default, PostgreSQL by URL, schema migrated at start-up.

The records import without the database stack; :class:`Store` needs the ``[serve]`` extra
(SQLAlchemy, Alembic) and is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coldbrew.store.records import Interaction, Item, User

if TYPE_CHECKING:
    from coldbrew.store.db import Store, StoreUnavailable, database_url

__all__ = ["Interaction", "Item", "Store", "StoreUnavailable", "User", "database_url"]


def __getattr__(name: str) -> Any:
    if name in ("Store", "StoreUnavailable", "database_url"):
        try:
            from coldbrew.store import db
        except ImportError as exc:
            raise ImportError(
                f"the store needs its extra: pip install 'coldbrew[serve]' ({exc})"
            ) from exc
        return getattr(db, name)
    raise AttributeError(f"module 'coldbrew.store' has no attribute {name!r}")
