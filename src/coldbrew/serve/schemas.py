"""Request and response bodies (pydantic); every limit here shows in the OpenAPI docs.

Requests are strict: a number sent as a string (``"k": "10"``) or a boolean where a number
belongs (``"k": true``) is refused, as are NaN and ±Infinity, NUL characters and lone surrogates
(neither database can store them). Ids are compared in Unicode NFC and hold no bidi control or
zero-width character (:data:`ID_PATTERN`), in paths as in bodies. Every string, list and mapping
has a cap, so no request can make the service encode, store or echo an unbounded amount of text.
At the end, the conversions between these bodies and the running system's records, in one place
for every route.
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from coldbrew.live.answers import Answer, Recommendation
from coldbrew.live.engine import now
from coldbrew.models.context import MAX_KEYS as MAX_CONTEXT_KEYS
from coldbrew.models.context import parse_context
from coldbrew.store import Interaction, Item, User

MAX_TEXT_CHARS = 2000
MAX_TITLE_CHARS = 500
MAX_DESCRIPTION_CHARS = 10_000
MAX_BATCH = 1000
MAX_LIKED = 200
MAX_IDS = 10_000
MAX_ID_CHARS = 200
MAX_KEY_CHARS = 64
MAX_TIMESTAMP = 1e11  # seconds since the epoch: about the year 5138

# Characters an id may not hold: controls, spaces (ASCII and Unicode), and the URL delimiters
# "/", "?", "#" and "\" (ids appear in paths); and the invisible ones (issue 28): bidi controls
# (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), which make an id display as another,
# and zero-width characters (U+200B-U+200D, U+2060, U+FEFF), which make two ids that look alike
# differ. Spelled out rather than "\s", so Python's regex (which generates and checks ids in
# clients) and the server's agree on every character. Emoji and every other letter are allowed.
_ID_EXCLUDED = (
    r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000/?#\\"
    r"\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"
)
# ... and at least one character that is not a dot, so "." and ".." never name a path segment
ID_PATTERN = rf"^[^{_ID_EXCLUDED}]*[^{_ID_EXCLUDED}.][^{_ID_EXCLUDED}]*$"
NO_NUL = r"^[^\x00]*$"


def _encodable(value: str) -> str:
    """Refuse lone surrogates: valid JSON (``"\\ud800"``), but not storable UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (a lone surrogate cannot be stored)") from None
    return value


def _chars(max_length: int, min_length: int = 0, strip: bool = False) -> StringConstraints:
    """Length limits, and no NUL (which PostgreSQL cannot store in text)."""
    return StringConstraints(
        min_length=min_length, max_length=max_length, strip_whitespace=strip, pattern=NO_NUL
    )


def _nfc(value: str) -> str:
    """An id in Unicode NFC, so "é" sent composed or decomposed names the same thing."""
    normal = unicodedata.normalize("NFC", value)
    if len(normal) > MAX_ID_CHARS:
        raise ValueError(f"has over {MAX_ID_CHARS} characters in Unicode NFC")
    return normal


_UTF8 = AfterValidator(_encodable)
ID_NFC = AfterValidator(_nfc)
Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN),
    _UTF8,
    ID_NFC,
]
Key = Annotated[str, _chars(MAX_KEY_CHARS, min_length=1), _UTF8]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Title = Annotated[str, _chars(MAX_TITLE_CHARS, min_length=1, strip=True), _UTF8]
Description = Annotated[str, _chars(MAX_DESCRIPTION_CHARS), _UTF8]
UserText = Annotated[str, _chars(MAX_TEXT_CHARS), _UTF8]

# items and users: what the catalogue and a profile may hold
_Value = Annotated[str, _chars(500), _UTF8]
_ListValue = Annotated[list[Annotated[str, _chars(200), _UTF8]], Field(max_length=50)]
Attributes = Annotated[dict[Key, _Value | int | Finite | bool | _ListValue], Field(max_length=50)]
# a recommend request: read by the encoder and quoted in explanations, so kept smaller
_QueryValue = Annotated[str, _chars(200), _UTF8]
_QueryListValue = Annotated[list[Annotated[str, _chars(100), _UTF8]], Field(max_length=20)]
QueryAttributes = Annotated[
    dict[Key, _QueryValue | int | Finite | bool | _QueryListValue], Field(max_length=20)
]
Scalar = _QueryValue | int | Finite | bool


Context = Annotated[
    dict[Key, UserText | int | Finite | bool],
    Field(
        max_length=MAX_CONTEXT_KEYS,
        description="When, where and how: time (seconds since 1970 or ISO 8601, e.g. "
        '"2011-06-04T09:30:00"), location, device, text, or any other key.',
        examples=[{"time": "2011-06-04T09:30:00", "location": "France", "device": "mobile"}],
    ),
    AfterValidator(parse_context),  # checked as the library checks it: a readable time
]
Event = Literal["view", "click", "like", "purchase", "dislike"]
# what the service answers with (stored values, unconstrained)
AttrValue = str | int | float | bool | list[str]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ItemIn(Strict):
    id: Id = Field(description="Your id for the item; upserting the same id replaces it.")
    title: Title
    description: Description = ""
    attributes: Attributes = Field(default_factory=dict)


class ItemOut(BaseModel):
    id: str
    title: str
    description: str
    attributes: dict[str, AttrValue]


class UserIn(Strict):
    id: Id
    text: UserText = Field("", description="The user's own words (never logged).")
    attributes: Attributes = Field(default_factory=dict)


class InteractionIn(Strict):
    id: Id | None = Field(None, description="Idempotency key; derived from the fields if absent.")
    user_id: Id
    item_id: Id
    event: Event = "click"
    value: Finite | None = None
    timestamp: Annotated[float, Field(ge=-MAX_TIMESTAMP, le=MAX_TIMESTAMP)] | None = Field(
        None, description="Seconds since the epoch; default: now."
    )
    context: Context | None = None


class FeedbackIn(Strict):
    user_id: Id
    item_id: Id
    event: Literal["click", "like", "purchase", "dislike"]
    context: Context | None = None


class ItemBatch(Strict):
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_BATCH)]


class UserBatch(Strict):
    users: Annotated[list[UserIn], Field(min_length=1, max_length=MAX_BATCH)]


class InteractionBatch(Strict):
    interactions: Annotated[list[InteractionIn], Field(min_length=1, max_length=MAX_BATCH)]


class RecommendIn(Strict):
    user_id: Id | None = Field(
        None, description="A stored user: needs an API key (their profile is private)."
    )
    text: UserText | None = None
    attributes: QueryAttributes = Field(default_factory=dict)
    liked: Annotated[list[Id], Field(max_length=MAX_LIKED)] = Field(default_factory=list)
    context: Context = Field(default_factory=dict)
    k: Annotated[int, Field(ge=1, le=100)] = 10
    filters: Annotated[
        dict[Key, Annotated[list[Scalar], Field(max_length=100)]],
        Field(max_length=20),
    ] = Field(
        default_factory=dict,
        description='Item attribute -> allowed values: {"category": ["books"]}',
    )
    allowed_ids: Annotated[list[Id], Field(max_length=MAX_IDS)] | None = None
    excluded_ids: Annotated[list[Id], Field(max_length=MAX_IDS)] = Field(default_factory=list)
    exclude_seen: bool = True
    explain: bool = True
    diversity: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.0,
        description="0-1: how much less alike the items may be (maximal marginal relevance over "
        "the item text vectors, lambda = 1 - diversity); 0: off.",
    )
    novelty: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        0.0,
        description="0-10: how strongly popular items are pushed down (a penalty on log "
        "popularity, in standard deviations of the score per standard deviation); 0: off.",
    )
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
    model_version: str = Field(description="The served model version that ranked the items.")
    model_kind: str = Field(description="Its kind: hybrid, zeroshot, or a saved model's kind.")
    warnings: list[str] = Field(
        default_factory=list,
        description="Problems with the request the answer could not fix, e.g. Chinese text "
        "sent to an encoder that reads English only.",
    )


MAX_BATCH_QUERIES = 32
"""Queries one ``POST /recommend/batch`` may carry (one admission slot, one worker thread)."""


class RecommendBatchIn(Strict):
    queries: Annotated[list[RecommendIn], Field(min_length=1, max_length=MAX_BATCH_QUERIES)] = (
        Field(description="Each as POST /recommend takes it (its own context included).")
    )


class RecommendBatchOut(BaseModel):
    results: list[RecommendOut] = Field(description="One answer per query, in the order sent.")


class RefitOut(BaseModel):
    """The served model and the service's refits."""

    status: str | None = Field(
        default=None,
        description="What a POST did: started, queued (after the running one), waiting (too few "
        "interactions yet), requested (from the replica that trains) or off (this service "
        "does not refit).",
    )
    version: str
    kind: str
    serving: str
    trainer: bool = Field(
        default=True,
        description="Whether this process refits: a single process does; of replicas over one "
        "PostgreSQL database, only the elected trainer (a POST elsewhere is 'requested' from it).",
    )
    running: bool
    running_since: float | None = None
    refits: int
    outcomes: dict[str, int]
    last: dict[str, Any]


class UserOut(BaseModel):
    id: str
    text: str
    attributes: dict[str, AttrValue]
    interactions: int


class Written(BaseModel):
    written: int = Field(
        description="Distinct rows written (a batch naming an id twice keeps the last)."
    )


class ReadyOut(BaseModel):
    status: str = Field(description='"ready", "starting" or "database unreachable"')
    items: int = 0
    users: int = 0


class RowErrorOut(BaseModel):
    index: int = Field(description="The row of the batch, or -1 when the error is not in one row.")
    id: str
    field: str
    message: str


class ErrorOut(BaseModel):
    detail: str
    errors: list[RowErrorOut] = []


# ---- to and from the running system's records ------------------------------------------
def recommendation_out(rec: Recommendation) -> RecommendationOut:
    """One recommended item with its score (rounded to 6 places) and explanation."""
    exp = rec.explanation
    return RecommendationOut(
        item_id=rec.item.item_id,
        score=round(rec.score, 6),
        title=rec.item.title,
        description=rec.item.description,
        attributes=rec.item.attributes,
        explanation=None
        if exp is None
        else ExplanationOut(
            text=exp.text,
            parts=exp.parts,
            words=[WordOut(word=w, similarity=v) for w, v in exp.words],
            liked=[LikedOut(item_id=i, title=t, similarity=v) for i, t, v in exp.liked],
        ),
    )


def recommend_out(found: Answer, warnings: list[str] | None = None) -> RecommendOut:
    """A ranked answer, with the model version that ranked it (and what the request could not
    get right, such as a script the encoder cannot read)."""
    return RecommendOut(
        items=[recommendation_out(r) for r in found],
        model_version=found.version,
        model_kind=found.kind,
        warnings=warnings or [],
    )


def interaction(body: InteractionIn) -> Interaction:
    """The interaction, stamped now when it has no time, with an id derived from its fields
    when it has none (so a retried request writes the same row)."""
    timestamp = body.timestamp if body.timestamp is not None else now()
    ident = (
        body.id
        or hashlib.sha1(
            f"{body.user_id}\x1f{body.item_id}\x1f{body.event}\x1f{timestamp!r}".encode()
        ).hexdigest()
    )
    return Interaction(
        ident, body.user_id, body.item_id, body.event, timestamp, body.value, body.context
    )


def item(body: ItemIn) -> Item:
    """The item to store."""
    return Item(body.id, body.title, body.description, dict(body.attributes))


def item_out(found: Item) -> ItemOut:
    """A stored item as the API shows it."""
    return ItemOut(
        id=found.item_id,
        title=found.title,
        description=found.description,
        attributes=found.attributes,
    )


def user(body: UserIn) -> User:
    """The user to store."""
    return User(body.id, body.text, dict(body.attributes))
