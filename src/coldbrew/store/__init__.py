"""Durable storage: SQLite by default, PostgreSQL by URL, schema migrated at start-up."""

from coldbrew.store.db import Store, database_url
from coldbrew.store.records import Interaction, Item, User

__all__ = ["Interaction", "Item", "Store", "User", "database_url"]
