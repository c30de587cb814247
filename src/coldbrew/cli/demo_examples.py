"""What ``coldbrew demo`` asks: fixed examples on the bundled sample, and examples drawn from the
user's own catalogue for ``demo --data FOLDER`` (a phrase from an item's title, a stored user's
attributes, two of its items, its most active user, and a new item made from one of its own).

An example the catalogue cannot give (no user has attributes or interactions) is kept with the
reason it is skipped, so the demo says so instead of leaving it out in silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coldbrew.data import ITEM_ID, USER_ID, Dataset
from coldbrew.data.frames import pd
from coldbrew.models.base import UserQuery
from coldbrew.store.records import Item

NEW_ITEM_ID = "coldbrew-demo-new-item"


@dataclass(frozen=True)
class Example:
    """One request the demo makes: ``query``, or ``None`` with why it is ``skipped``."""

    label: str
    query: UserQuery | None
    skipped: str = ""


@dataclass(frozen=True)
class DemoPlan:
    """The demo's examples and the new item whose reach it shows (``None``: no users)."""

    examples: list[Example]
    new_item: Item | None


SAMPLE_PLAN = DemoPlan(
    [
        Example("free text (English)", UserQuery(text="I need a light jacket for a spring outing")),
        Example("free text (Chinese)", UserQuery(text="想找一本好看的科幻小说")),
        Example(
            "attributes only",
            UserQuery(attributes={"age": "18-24", "gender": "male", "occupation": "student"}),
        ),
        Example("two clicks", UserQuery(liked=("en-013", "zh-013"))),
        Example("known user u1 (hiker)", UserQuery(user_id="u1")),
    ],
    Item(
        "new-001",
        "Packable rain jacket",
        "A featherweight waterproof jacket for spring hikes and camping trips.",
        {"category": "clothing", "price": 79.0},
    ),
)


def catalogue_plan(dataset: Dataset) -> DemoPlan:
    """Examples drawn from ``dataset``'s own items, users and interactions."""
    titles = dataset.items[dataset.title_column].astype(str).tolist()
    ids = dataset.items[ITEM_ID].astype(str).tolist()
    phrase = " ".join(titles[len(titles) // 2].split()[:3])
    clicks = tuple(dict.fromkeys([ids[0], ids[-1]]))
    examples = [
        Example("free text (from an item's title)", UserQuery(text=phrase)),
        _attributes_example(dataset),
        Example("two clicks" if len(clicks) == 2 else "one click", UserQuery(liked=clicks)),
        _known_user_example(dataset),
    ]
    users = set(dataset.users[USER_ID]) | set(dataset.interactions[USER_ID])
    return DemoPlan(examples, _new_item(dataset) if users else None)


def _attributes_example(dataset: Dataset) -> Example:
    columns = list(dataset.spec.user_attributes)
    for row in dataset.users[columns].to_dict(orient="records") if columns else []:
        attributes = {k: _text(v) for k, v in row.items() if not _missing(v)}
        if attributes:
            return Example("attributes only (a stored user's)", UserQuery(attributes=attributes))
    return Example("attributes only", None, "no stored user has attributes")


def _known_user_example(dataset: Dataset) -> Example:
    counts = dataset.positives()[USER_ID].value_counts()
    if counts.empty:
        return Example("known user", None, "no user has interactions yet")
    user = str(counts.sort_index().idxmax())  # the most active; ties: the first id
    return Example(f"known user {user} ({counts[user]} liked)", UserQuery(user_id=user))


def _new_item(dataset: Dataset) -> Item:
    """A new item made from the catalogue's first: its title with "new", the same fields."""
    row = dataset.items.iloc[0].to_dict()
    title = f"New: {row[dataset.title_column]}"
    description = row.get("description")
    own = (ITEM_ID, dataset.title_column, "description")
    attributes = {k: _text(v) for k, v in row.items() if k not in own and not _missing(v)}
    return Item(NEW_ITEM_ID, title, "" if _missing(description) else str(description), attributes)


def new_item_row(dataset: Dataset, item: Item) -> dict[str, Any]:
    """``item`` as a row of ``dataset``'s items table (for the in-memory model)."""
    row: dict[str, Any] = {ITEM_ID: item.item_id, dataset.title_column: item.title}
    if "description" in dataset.items.columns:
        row["description"] = item.description
    return {**item.attributes, **row}


def _missing(value: Any) -> bool:
    return not isinstance(value, list) and bool(pd.isna(value))


def _text(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
