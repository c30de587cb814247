"""Query assembly and filters: a request joined with the live state.

A request's :class:`~coldbrew.models.UserQuery` (``Query.user``: who the user is, as the
request says) becomes the model's query with the stored user's words, attributes and current
history (:func:`user_query`: the same type, replaced where the store knows more), and its
filters become the set of items allowed (from the items by attribute value).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from coldbrew.live.answers import Query
from coldbrew.live.errors import NotFoundError
from coldbrew.live.state import Live
from coldbrew.models.query import UserQuery


@dataclass(frozen=True)
class Asked:
    """A request joined with the live state: the model's query (:func:`user_query`), the
    items it must not return and the items it may (``None``: any)."""

    user: UserQuery
    exclude: set[str]
    allowed: set[str] | None


def asked(live: Live, query: Query) -> Asked:
    """``query`` joined with the live state: who (:func:`user_query`), what is excluded (the
    request's ids, and what the user has seen unless told otherwise) and what is allowed."""
    allowed_ids = allowed(live, query)
    user, seen = user_query(live, query.user)
    exclude = set(query.excluded_ids) | (seen if query.exclude_seen else set())
    return Asked(user, exclude, allowed_ids)


def user_query(live: Live, user: UserQuery) -> tuple[UserQuery, set[str]]:
    """The model's query for the request's ``user`` (the stored profile and current history,
    with what the request adds), and the items the user has seen."""
    state = live.users.get(user.user_id) if user.user_id else None
    if user.user_id and state is None:
        raise NotFoundError("user", user.user_id)
    for item_id in user.liked:
        if item_id not in live.items:
            raise NotFoundError("item", item_id)
    text = user.text.strip() if user.text and user.text.strip() else None
    if text is None and state is not None and state.user.text.strip():
        text = state.user.text.strip()
    attributes = {**(state.user.attributes if state else {}), **user.attributes}
    liked, disliked = state.liked_and_disliked() if state else ([], [])
    # deleted items stay in the user's history in the database but count no more
    liked = [i for i in dict.fromkeys([*liked, *user.liked]) if i in live.items]
    disliked = [i for i in dict.fromkeys([*disliked, *user.disliked]) if i in live.items]
    seen = (state.seen() if state else set()) | set(user.liked)
    # the model's stored history is for users it was trained on; a user whose history is
    # now empty is answered from what they bring today
    user_id = user.user_id if liked else None
    joined = replace(
        user,
        user_id=user_id,
        text=text,
        attributes=attributes,
        liked=tuple(liked),
        disliked=tuple(disliked),
    )
    return joined, seen


def allowed(live: Live, query: Query) -> set[str] | None:
    allowed = set(query.allowed_ids) if query.allowed_ids is not None else None
    for key, values in query.filters.items():
        index = live.by_attribute.get(key, {})
        matching: set[str] = set()
        for value in values:
            matching.update(index.get(str(value), ()))
        allowed = matching if allowed is None else allowed & matching
    return allowed
