"""What the running recommender is asked (:class:`Query`: the one query type after the HTTP
schema) and what it answers (:class:`Answer` of :class:`Recommendation`, each with its
:class:`Explanation`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from coldbrew.models.query import UserQuery
from coldbrew.store import Item


@dataclass(frozen=True)
class Query:
    """One request: who the user is, as the request says (``user``: any mix of a known id,
    text, attributes, liked items and context; the model's own query type, joined with the
    stored profile by :func:`coldbrew.live.queries.user_query`), and how to answer (how many,
    which items may appear, with explanations or not, how diverse and how far from the most
    popular: :mod:`coldbrew.models.rerank`)."""

    user: UserQuery = field(default_factory=UserQuery)
    k: int = 10
    filters: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    allowed_ids: tuple[str, ...] | None = None
    excluded_ids: tuple[str, ...] = ()
    exclude_seen: bool = True
    explain: bool = True
    diversity: float = 0.0
    novelty: float = 0.0
    # whether explanations may quote the stored user's text, attributes and liked items, or
    # only what this request sent (the service decides by the caller's key)
    quote_profile: bool = True


@dataclass
class Recommendation:
    item: Item
    score: float
    explanation: Explanation | None = None


class Answer(list[Recommendation]):
    """Ranked recommendations, and the model version that ranked them."""

    def __init__(self, recs: Sequence[Recommendation], version: str, kind: str) -> None:
        super().__init__(recs)
        self.version, self.kind = version, kind


@dataclass
class Explanation:
    """Why one item was recommended."""

    text: str
    parts: dict[str, float] = field(default_factory=dict)
    words: list[tuple[str, float]] = field(default_factory=list)
    liked: list[tuple[str, str, float]] = field(default_factory=list)
