"""Conversions between the HTTP schemas and the library's records, in one place for every route."""

from __future__ import annotations

import hashlib

from coldbrew.live.answers import Answer, Recommendation
from coldbrew.live.engine import now
from coldbrew.serve import schemas as s
from coldbrew.store import Interaction, Item, User


def recommendation_out(rec: Recommendation) -> s.RecommendationOut:
    """One recommended item with its score (rounded to 6 places) and explanation."""
    exp = rec.explanation
    return s.RecommendationOut(
        item_id=rec.item.item_id,
        score=round(rec.score, 6),
        title=rec.item.title,
        description=rec.item.description,
        attributes=rec.item.attributes,
        explanation=None
        if exp is None
        else s.ExplanationOut(
            text=exp.text,
            parts=exp.parts,
            words=[s.WordOut(word=w, similarity=v) for w, v in exp.words],
            liked=[s.LikedOut(item_id=i, title=t, similarity=v) for i, t, v in exp.liked],
        ),
    )


def recommend_out(found: Answer, warnings: list[str] | None = None) -> s.RecommendOut:
    """A ranked answer, with the model version that ranked it (and what the request could not
    get right, such as a script the encoder cannot read)."""
    return s.RecommendOut(
        items=[recommendation_out(r) for r in found],
        model_version=found.version,
        model_kind=found.kind,
        warnings=warnings or [],
    )


def interaction(body: s.InteractionIn) -> Interaction:
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


def item(body: s.ItemIn) -> Item:
    """The item to store."""
    return Item(body.id, body.title, body.description, dict(body.attributes))


def item_out(found: Item) -> s.ItemOut:
    """A stored item as the API shows it."""
    return s.ItemOut(
        id=found.item_id,
        title=found.title,
        description=found.description,
        attributes=found.attributes,
    )


def user(body: s.UserIn) -> User:
    """The user to store."""
    return User(body.id, body.text, dict(body.attributes))
