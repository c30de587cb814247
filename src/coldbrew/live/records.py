"""The service's records as the library's :class:`~coldbrew.data.Dataset`, for fitting models.

Items are read through one rendered ``text`` column (title, description, then the attributes
that are words), the same text whose vectors the database stores, so a model fitted from the
database re-encodes nothing. Positive events are the interactions; dislikes are not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from math import isnan
from typing import Any

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.schema import (
    CONTEXT,
    ITEM_ID,
    TIMESTAMP,
    USER_ID,
    VALUE,
    Dataset,
    DatasetSpec,
)
from coldbrew.models.users import profile, users_of
from coldbrew.store import Interaction, Item, User
from coldbrew.text.templates import ItemTemplate

POSITIVE_EVENTS = ("view", "click", "like", "purchase")
EVENTS = (*POSITIVE_EVENTS, "dislike")
TEXT = "text"


def text_attributes(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """Attributes worth reading as text: strings and lists of strings (not prices or counts)."""
    return tuple(
        k
        for k, v in attributes.items()
        if isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
    )


def item_text(item: Item) -> str:
    """The text an item is encoded from: title, description, then its textual attributes."""
    return _item_template(text_attributes(item.attributes)).render(
        {**item.attributes, "title": item.title, "description": item.description}
    )


@lru_cache(maxsize=1024)
def _item_template(attributes: tuple[str, ...]) -> ItemTemplate:
    """One template per set of textual attributes (a catalogue has a few; a million items
    rendered at start-up each built their own)."""
    return ItemTemplate(("title", "description"), attributes)


def attribute_values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def item_frame(items: Sequence[Item], fields: Sequence[str] = ()) -> pd.DataFrame:
    """Items as rows of ``item_id``, ``title`` and the rendered ``text`` models read, plus a
    column for each of ``fields`` (``description`` or an attribute: the fields a saved model
    was trained on, read under their own names)."""
    frame = pd.DataFrame(
        {
            ITEM_ID: [i.item_id for i in items],
            "title": [i.title for i in items],
            TEXT: [item_text(i) for i in items],
        }
    )
    for name in fields:
        if name not in frame.columns:
            frame[name] = [_field(i, name) for i in items]
    return frame


def _field(item: Item, name: str) -> Any:
    return item.description if name == "description" else item.attributes.get(name)


def _user_frame(users: Sequence[User]) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Users with their words and scalar attributes (lists and nested values are left out)."""
    keys = _attribute_keys(users)
    frame = pd.DataFrame(_user_rows(users, keys), columns=[USER_ID, TEXT, *keys])
    return frame, keys


def _user_rows(users: Sequence[User], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each user as a row: id, words and the attributes ``keys`` names (missing ones ``None``)."""
    return [
        {USER_ID: u.user_id, TEXT: u.text, **{k: u.attributes.get(k) for k in keys}} for u in users
    ]


def _attribute_keys(users: Sequence[User]) -> tuple[str, ...]:
    return tuple(sorted({k for u in users for k, v in u.attributes.items() if _scalar(v)}))


def service_profiles(users: Sequence[User]) -> tuple[DatasetSpec, dict[str, dict[str, Any]]]:
    """The spec of :func:`dataset_from_records` over ``users``, and each user's profile as a
    fit on it reads them (:func:`~coldbrew.models.users.users_of`), read from the records
    without a frame (a restart builds none) where a frame's column would not convert a value:
    an attribute held as text, as floats, or as integers by every user. Else (integers some
    users lack become floats in a column, mixed kinds stay as they are) through the frame."""
    keys = _attribute_keys(users)
    spec = _service_spec(keys)
    for key in keys:
        given = [v for u in users if (v := u.attributes.get(key)) is not None]
        kinds = {type(v) for v in given}
        if (
            len(kinds) > 1
            or kinds - {str, float, int}
            or (int in kinds and len(given) < len(users))
        ):
            return spec, users_of(ids_dataset([], users))[1]
    return spec, {row[USER_ID]: profile(row, spec, _missing) for row in _user_rows(users, keys)}


def _missing(value: Any) -> bool:
    """What a frame's column holds as missing, for a record's plain values: none or NaN."""
    return value is None or (isinstance(value, float) and isnan(value))


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def positive_frame(interactions: Sequence[Interaction]) -> pd.DataFrame:
    """Positive events, oldest first (ties in arrival order)."""
    positives = [i for i in interactions if i.event in POSITIVE_EVENTS]
    any_context = any(i.context for i in positives)
    return pd.DataFrame(
        {
            USER_ID: pd.Series([i.user_id for i in positives], dtype=str),
            ITEM_ID: pd.Series([i.item_id for i in positives], dtype=str),
            VALUE: np.full(len(positives), np.nan),
            TIMESTAMP: pd.Series([i.timestamp for i in positives], dtype="float64"),
            **({CONTEXT: [i.context for i in positives]} if any_context else {}),
        }
    )


def dataset_from_records(
    items: Sequence[Item],
    users: Sequence[User],
    interactions: Sequence[Interaction],
    name: str = "service",
) -> Dataset:
    """A dataset of the service's catalogue, users and positive events (on items that still
    exist: a deleted item's events stay in the database but teach nothing)."""
    known = {i.item_id for i in items}
    interactions = [i for i in interactions if i.item_id in known]
    return _service_dataset(item_frame(items), users, positive_frame(interactions), name)


def ids_dataset(item_ids: Sequence[str], users: Sequence[User]) -> Dataset:
    """:func:`dataset_from_records` of no events, its items as ids alone (no text)."""
    items = pd.DataFrame({ITEM_ID: pd.Series(item_ids, dtype=str)})
    return _service_dataset(items, users, positive_frame([]), "service")


def _service_dataset(
    items: pd.DataFrame, users: Sequence[User], positives: pd.DataFrame, name: str
) -> Dataset:
    user_frame, attribute_keys = _user_frame(users)
    return Dataset(_service_spec(attribute_keys, name), items, positives, user_frame)


def _service_spec(attribute_keys: tuple[str, ...], name: str = "service") -> DatasetSpec:
    return DatasetSpec(
        name=name,
        item_text=(TEXT,),
        user_text=(TEXT,),
        user_attributes=attribute_keys,
        positive_threshold=None,
    )
