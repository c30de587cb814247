"""Query assembly and filters: a request joined with the live state.

A request's :class:`~coldbrew.live.answers.Query` becomes the model's
:class:`~coldbrew.models.UserQuery` with the stored user's words, attributes and current
history, and its filters become the set of items allowed (from the items by attribute value).
"""

from __future__ import annotations

from coldbrew.live.answers import Query
from coldbrew.live.errors import NotFoundError
from coldbrew.live.state import Live
from coldbrew.models.base import UserQuery


def user_query(live: Live, query: Query) -> tuple[UserQuery, set[str]]:
    """The model's query for this request (the stored profile and current history, with
    what the request adds), and the items the user has seen."""
    state = live.users.get(query.user_id) if query.user_id else None
    if query.user_id and state is None:
        raise NotFoundError("user", query.user_id)
    for item_id in query.liked:
        if item_id not in live.items:
            raise NotFoundError("item", item_id)
    text = query.text.strip() if query.text and query.text.strip() else None
    if text is None and state is not None and state.user.text.strip():
        text = state.user.text.strip()
    attributes = {**(state.user.attributes if state else {}), **query.attributes}
    liked, disliked = state.liked_and_disliked() if state else ([], [])
    # deleted items stay in the user's history in the database but count no more
    liked = [i for i in dict.fromkeys([*liked, *query.liked]) if i in live.items]
    disliked = [i for i in disliked if i in live.items]
    seen = (state.seen() if state else set()) | set(query.liked)
    # the model's stored history is for users it was trained on; a user whose history is
    # now empty is answered from what they bring today
    user_id = query.user_id if liked else None
    uq = UserQuery(user_id, text, attributes, tuple(liked), tuple(disliked), query.context)
    return uq, seen


def allowed(live: Live, query: Query) -> set[str] | None:
    allowed = set(query.allowed_ids) if query.allowed_ids is not None else None
    for key, values in query.filters.items():
        index = live.by_attribute.get(key, {})
        matching: set[str] = set()
        for value in values:
            matching |= index.get(str(value), set())
        allowed = matching if allowed is None else allowed & matching
    return allowed
