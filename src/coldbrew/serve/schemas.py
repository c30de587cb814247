"""Request and response bodies (pydantic); every limit here shows in the OpenAPI docs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_TEXT_CHARS = 2000
MAX_DESCRIPTION_CHARS = 10_000
MAX_BATCH = 1000
MAX_LIKED = 200

Id = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\s/?#]+$")]
Scalar = str | int | float | bool
AttrValue = Annotated[str, StringConstraints(max_length=500)] | int | float | bool | list[str]
Attributes = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], AttrValue],
    Field(max_length=50),
]
Event = Literal["view", "click", "like", "purchase", "dislike"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemIn(Strict):
    id: Id = Field(description="Your id for the item; upserting the same id replaces it.")
    title: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
    description: Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_CHARS)] = ""
    attributes: Attributes = Field(default_factory=dict)


class ItemOut(BaseModel):
    id: str
    title: str
    description: str
    attributes: dict[str, AttrValue]


class UserIn(Strict):
    id: Id
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)] = Field(
        "", description="The user's own words (never logged)."
    )
    attributes: Attributes = Field(default_factory=dict)


class InteractionIn(Strict):
    id: Id | None = Field(None, description="Idempotency key; derived from the fields if absent.")
    user_id: Id
    item_id: Id
    event: Event = "click"
    value: float | None = None
    timestamp: float | None = Field(None, description="Seconds since the epoch; default: now.")


class FeedbackIn(Strict):
    user_id: Id
    item_id: Id
    event: Literal["click", "like", "purchase", "dislike"]


class ItemBatch(Strict):
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_BATCH)]


class UserBatch(Strict):
    users: Annotated[list[UserIn], Field(min_length=1, max_length=MAX_BATCH)]


class InteractionBatch(Strict):
    interactions: Annotated[list[InteractionIn], Field(min_length=1, max_length=MAX_BATCH)]


class RecommendIn(Strict):
    user_id: Id | None = None
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)] | None = None
    attributes: Attributes = Field(default_factory=dict)
    liked: Annotated[list[Id], Field(max_length=MAX_LIKED)] = Field(default_factory=list)
    k: Annotated[int, Field(ge=1, le=100)] = 10
    filters: Annotated[dict[str, list[Scalar]], Field(max_length=20)] = Field(
        default_factory=dict,
        description='Item attribute -> allowed values: {"category": ["books"]}',
    )
    allowed_ids: Annotated[list[Id], Field(max_length=10_000)] | None = None
    excluded_ids: Annotated[list[Id], Field(max_length=10_000)] = Field(default_factory=list)
    exclude_seen: bool = True
    explain: bool = True
    relevance: bool = Field(
        default=False,
        description="Also give each item's relevance: the percentile of its score among every "
        "item's for this user (costs about one more ranking).",
    )


class WordOut(BaseModel):
    word: str
    similarity: float


class LikedOut(BaseModel):
    item_id: str
    title: str
    similarity: float


class ExplanationOut(BaseModel):
    text: str
    parts: dict[str, float] = Field(description="Each part's share of the score; they sum to it.")
    words: list[WordOut] = []
    liked: list[LikedOut] = []


class RecommendationOut(BaseModel):
    item_id: str
    score: float
    title: str
    description: str
    attributes: dict[str, AttrValue]
    explanation: ExplanationOut | None = None
    relevance: float | None = Field(
        default=None,
        description="0-100: the share of the catalogue this item outscores (if asked).",
    )


class RecommendOut(BaseModel):
    items: list[RecommendationOut]
    warnings: list[str] = Field(
        default_factory=list,
        description="Problems with the request the answer could not fix, e.g. Chinese text "
        "sent to an encoder that reads English only.",
    )


class UserOut(BaseModel):
    id: str
    text: str
    attributes: dict[str, AttrValue]
    interactions: int


class Written(BaseModel):
    written: int


class RowErrorOut(BaseModel):
    index: int
    id: str
    field: str
    message: str


class ErrorOut(BaseModel):
    detail: str
    errors: list[RowErrorOut] = []
