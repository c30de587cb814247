"""Ranking a request: the served model's top items, controlled and explained.

The whole catalogue is ranked by :meth:`~coldbrew.models.Recommender.recommend`, or, at
``Serving.score_all_below`` items and more, only the candidates
(:mod:`coldbrew.live.candidates`); then the request's diversity and novelty controls pick the
top ``k`` of a larger pool, and the explainer words the model's reasons when asked.
"""

from __future__ import annotations

import numpy as np

from coldbrew.live import candidates, queries
from coldbrew.live.answers import Answer, Query, Recommendation
from coldbrew.live.state import INLINE_ITEMS, Live
from coldbrew.models.base import Recommendations, UserQuery
from coldbrew.models.rerank import pool_size, rerank


def recommend(live: Live, query: Query) -> Answer:
    """Top-``k`` items for any mix of user id, text, attributes and liked items."""
    with live.lock.read():
        return ranked(live, query)


def recommend_now(live: Live, query: Query) -> Answer | None:
    """:func:`recommend`, if it can be answered at once without blocking; else ``None``.

    At once means: without the encoder (a user known only by their history, or liked items;
    no text or attributes, no explanations), with no filters or allowed ids, on a catalogue
    of at most :data:`INLINE_ITEMS` items (the model scores every part of it), and while no
    write holds or waits for the lock. The service answers such
    requests on its event loop and sends the rest to worker threads.
    """
    if query.text or query.attributes or query.explain or query.filters:
        return None
    if query.allowed_ids is not None or len(live.items) > INLINE_ITEMS:
        return None
    with live.lock.try_read() as free:
        if not free:
            return None
        uq, _ = queries.user_query(live, query)
        if uq.text or uq.attributes:
            return None
        return ranked(live, query)


def ranked(live: Live, query: Query) -> Answer:
    """The body of :func:`recommend`; the caller holds the read lock."""
    uq, seen = queries.user_query(live, query)
    model, info = live.model, live.info
    if model is None:  # no items yet: nothing to recommend
        return Answer([], info.version, info.kind)
    if uq.is_empty():
        raise ValueError(
            "nothing is known about this user yet: give text, attributes or liked items"
        )
    exclude = set(query.excluded_ids) | (seen if query.exclude_seen else set())
    allowed = queries.allowed(live, query)
    subset = len(model.item_ids) >= live.serving.score_all_below
    n = pool_size(query.k) if query.diversity or query.novelty else query.k
    if subset:
        found = candidates.recommend_candidates(live, model, uq, n, exclude, allowed)
    else:
        found = model.recommend(uq, n, exclude=exclude, candidates=allowed, exclude_seen=False)
    found = controlled(live, found, query)
    recs = [Recommendation(live.items[i], float(s)) for i, s in zip(found.ids, found.scores)]
    if query.explain and recs:
        sent = UserQuery(
            text=query.text,
            attributes=query.attributes,
            liked=query.liked,
            context=query.context,
        )
        quotable = None if query.quote_profile else sent
        live.explainer.explain(model, uq, recs, quotable, subset=subset)
    return Answer(recs, info.version, info.kind)


def controlled(live: Live, found: Recommendations, query: Query) -> Recommendations:
    """The top ``query.k`` of the pool ``found`` with the request's diversity (over the
    index's text vectors) and novelty (against how many users touched each item)."""
    if not (query.diversity or query.novelty):
        return found
    vectors = None
    if query.diversity:
        vectors = live.index.row_vectors(live.index.ids.rows(found.ids))
    popularity = np.asarray([len(live.users_of.get(i, ())) for i in found.ids], np.float32)
    chosen = rerank(
        np.asarray(found.scores),
        query.k,
        vectors=vectors,
        popularity=popularity,
        diversity=query.diversity,
        novelty=query.novelty,
    )
    return Recommendations([found.ids[c] for c in chosen], np.asarray(found.scores)[chosen])
