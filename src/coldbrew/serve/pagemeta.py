"""What the try-it page offers to pick from, taken from the data rather than hard-coded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from coldbrew.store.records import User

MAX_VALUES = 50


def user_attribute_values(users: Iterable[User], limit: int = MAX_VALUES) -> dict[str, list[str]]:
    """Each user attribute with its ``limit`` most common values (as text), sorted by value.

    Lists (several values) count each value; numbers show as written."""
    counts: dict[str, Counter[str]] = {}
    for user in users:
        for key, value in user.attributes.items():
            values = value if isinstance(value, list) else [value]
            counts.setdefault(key, Counter()).update(str(v) for v in values if v not in ("", None))
    return {
        key: sorted(v for v, _ in counter.most_common(limit))
        for key, counter in sorted(counts.items())
        if counter
    }
