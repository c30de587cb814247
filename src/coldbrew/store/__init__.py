"""Durable storage: SQLite by default, PostgreSQL by URL, schema migrated at start-up."""

from coldbrew.store.db import Store, StoreUnavailable, database_url
from coldbrew.store.records import Interaction, Item, User

__all__ = ["Interaction", "Item", "Store", "StoreUnavailable", "User", "database_url"]
