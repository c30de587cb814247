"""A dataset folder (or a benchmark) into the running recommender: ``coldbrew serve --data``.

Rows become the service's records (:func:`dataset_records`): an item's ``title`` (else its first
text column) and ``description`` are its title and description, and every other column is kept
as an attribute under its own name, so the service's encoder reads every text column and a
trained model finds the fields it was trained on. A rated interaction is a ``like`` at the
dataset's ``positive_threshold`` or above, a ``dislike`` two or more below it, else a ``view``.

:func:`import_records` writes through the engine in batches (items are encoded as they are
written), with a progress bar per table on stderr. It is idempotent: items and users are upserted
by id (unchanged items are not encoded again), and an interaction's id is a digest of its user,
item, time and value, so a second run finds every interaction already stored and adds none.
``coldbrew serve --data`` builds the service's engine for it
(:func:`coldbrew.cli.serve.import_dataset`).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from coldbrew.data.frames import pd
from coldbrew.data.schema import CONTEXT, ITEM_ID, TIMESTAMP, USER_ID, VALUE, Dataset
from coldbrew.live.engine import Engine
from coldbrew.store.records import Interaction, Item, User

ITEM_BATCH = 512
"""Items encoded and written per transaction."""
ROW_BATCH = 5_000
"""Users or interactions written per transaction."""
_T = TypeVar("_T")


@dataclass(frozen=True)
class Records:
    """A dataset as the service's records."""

    items: list[Item]
    users: list[User]
    interactions: list[Interaction]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON stores."""
    return value.item() if hasattr(value, "item") else value


def _present(value: Any) -> bool:
    return isinstance(value, list) or not pd.isna(value)


def item_records(dataset: Dataset) -> list[Item]:
    """The dataset's items: title, description, and every other column as an attribute."""
    title = dataset.title_column
    own = (ITEM_ID, title, "description")
    items = []
    for row in dataset.items.to_dict(orient="records"):
        extra = {k: _plain(v) for k, v in row.items() if k not in own and _present(v)}
        text = row.get(title)
        description = row.get("description")
        items.append(
            Item(
                str(row[ITEM_ID]),
                str(text) if _present(text) else "",
                str(description) if _present(description) else "",
                extra,
            )
        )
    return items


def user_records(dataset: Dataset) -> list[User]:
    """The dataset's users: their text columns joined, and their attributes."""
    spec = dataset.spec
    users = []
    for row in dataset.users.to_dict(orient="records"):
        text = " ".join(str(row[f]) for f in spec.user_text if isinstance(row.get(f), str))
        attrs = {f: _plain(row[f]) for f in spec.user_attributes if _present(row.get(f))}
        users.append(User(str(row[USER_ID]), text.strip(), attrs))
    return users


def event_of(value: float | None, threshold: float | None) -> str:
    """The service's event for a rating: ``like`` at ``threshold`` or above, ``dislike`` two
    or more below, else ``view``; an unrated interaction (or no threshold) is a ``like``."""
    if value is None or threshold is None or value >= threshold:
        return "like"
    return "dislike" if value <= threshold - 2 else "view"


def interaction_id(user_id: str, item_id: str, timestamp: float, value: float | None) -> str:
    """The id of an imported interaction: the same row gets the same id in every run."""
    key = "\x1f".join((user_id, item_id, repr(timestamp), repr(value)))
    return "data-" + hashlib.sha1(key.encode()).hexdigest()[:20]


def interaction_records(dataset: Dataset) -> list[Interaction]:
    """The dataset's interactions, in file order (a row without a time gets its row number)."""
    threshold = dataset.spec.positive_threshold
    out = []
    for n, row in enumerate(dataset.interactions.to_dict(orient="records")):
        value = None if pd.isna(row.get(VALUE)) else float(row[VALUE])
        stamp = row.get(TIMESTAMP)
        timestamp = float(n) if stamp is None or pd.isna(stamp) else float(stamp)
        user, item = str(row[USER_ID]), str(row[ITEM_ID])
        out.append(
            Interaction(
                interaction_id(user, item, timestamp, value),
                user,
                item,
                event_of(value, threshold),
                timestamp,
                value,
                _context(row.get(CONTEXT)),
            )
        )
    return out


def _context(value: Any) -> dict[str, Any] | None:
    """An event's context as the store keeps it (plain JSON values), or ``None``."""
    if not isinstance(value, dict) or not value:
        return None
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in value.items()}


def dataset_records(dataset: Dataset) -> Records:
    """The dataset's items, users and interactions as the service's records."""
    return Records(item_records(dataset), user_records(dataset), interaction_records(dataset))


def _batches(
    rows: Sequence[_T], size: int, desc: str, write: Callable[[Sequence[_T]], None]
) -> None:
    """``write`` each batch of ``rows``, with a progress bar on stderr."""
    with tqdm(total=len(rows), desc=desc, unit=" rows", file=sys.stderr) as bar:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            write(batch)
            bar.update(len(batch))


def _new_interactions(engine: Engine, interactions: Sequence[Interaction]) -> list[Interaction]:
    """Those not stored already as they are (a re-run writes nothing and counts no refit)."""
    out = []
    for inter in interactions:
        state = engine.users.get(inter.user_id)
        stored = state.interactions.get(inter.interaction_id) if state else None
        if stored is None or stored[1] != inter:
            out.append(inter)
    return out


def import_records(engine: Engine, records: Records) -> dict[str, int]:
    """Write ``records`` through ``engine`` in batches; returns the rows new or changed by
    table (0 everywhere on a second run)."""
    items = [i for i in records.items if engine.items.get(i.item_id) != i]
    users = [u for u in records.users if u.user_id not in engine.users or _changed(engine, u)]
    interactions = _new_interactions(engine, records.interactions)
    _batches(items, ITEM_BATCH, "items", engine.upsert_items)
    _batches(users, ROW_BATCH, "users", engine.upsert_users)
    _batches(interactions, ROW_BATCH, "interactions", engine.add_interactions)
    return {"items": len(items), "users": len(users), "interactions": len(interactions)}


def _changed(engine: Engine, user: User) -> bool:
    return engine.users[user.user_id].user != user
