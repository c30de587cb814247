"""How few users a value may be shared by before a model's files may keep it."""

from __future__ import annotations

PRIVATE_MIN_USERS = 5
"""The fewest users an attribute value must be shared by before a model that learns per value
(attribute popularity, the attribute map) keeps it, where its files must name no one (the
service's hybrid). A value only one or a few users hold (a zip code, a rare diagnosis) would
otherwise sit in the files and point at them; 5 is the usual small-cell threshold for published
counts. Hashing the values instead would not hide them: they are few and guessable (every zip
code can be hashed and compared)."""


def check_min_users(min_users: int) -> int:
    """``min_users`` (see :data:`PRIVATE_MIN_USERS`), refused below 1."""
    if min_users < 1:
        raise ValueError(f"min_users must be at least 1, got {min_users}")
    return min_users
