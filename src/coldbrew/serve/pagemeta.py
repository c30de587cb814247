"""What the try-it page offers, taken from the data rather than hard-coded — and never a user's
own values: user attributes are listed by name only (a zip code or a diagnosis stored for one
user must not reach a keyless caller through ``/meta``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from coldbrew.store.records import User

MAX_NAMES = 50


def user_attribute_names(users: Iterable[User], limit: int = MAX_NAMES) -> list[str]:
    """The names of the ``limit`` user attributes most users have (ties by name), in that order.

    Only names: what any user holds under them never leaves the service this way."""
    counts: Counter[str] = Counter()
    for user in users:
        counts.update(key for key, value in user.attributes.items() if value not in ("", None, []))
    return [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
