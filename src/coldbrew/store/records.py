"""Plain records the store reads and writes (no ORM objects leave the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Item:
    item_id: str
    title: str
    description: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class User:
    user_id: str
    text: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Interaction:
    interaction_id: str
    user_id: str
    item_id: str
    event: str
    timestamp: float
    value: float | None = None
    context: dict[str, Any] | None = None
    """When, where and how it happened (:mod:`coldbrew.models.context`), if the event said."""
