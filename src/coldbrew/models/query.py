"""What a model is asked (:class:`UserQuery`: the four cold-start modes in one type) and what it
answers (:class:`Recommendations`), the types of the :class:`~coldbrew.models.base.Recommender`
protocol, apart from it so anything may name them without the models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coldbrew.models.context import parse_context


@dataclass(frozen=True)
class UserQuery:
    """Everything known about the user to recommend for.

    Parameters
    ----------
    user_id
        A user seen in training: their history and profile are used unless given here.
    text
        The user's own words ("I need a light jacket for a spring outing").
    attributes
        Attributes such as ``{"age": "25-34", "occupation": "programmer"}``.
    liked
        Item ids the user interacted with, oldest first.
    disliked
        Item ids the user said they do not want (models that read text steer away from them).
    context
        When, where and how the user asks: ``{"time": "2011-06-04T09:30:00", "location":
        "France", "device": "mobile", "text": "rainy evening"}``, any other key kept
        (:mod:`coldbrew.models.context`). Only models that read context use it.
    """

    user_id: str | None = None
    text: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.context:  # checked once here, so every model reads a valid context
            object.__setattr__(self, "context", parse_context(self.context))

    def is_empty(self) -> bool:
        return not (
            self.user_id
            or (self.text and self.text.strip())
            or self.attributes
            or self.liked
            or self.context
        )


@dataclass
class Recommendations:
    """Ranked item ids, best first, with their scores."""

    ids: list[str]
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)
