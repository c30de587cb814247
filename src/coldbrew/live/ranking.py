"""Ranking a request: the served model's top items, controlled and explained.

The request is joined with the live state once (:func:`~coldbrew.live.queries.asked`) and
ranked by :meth:`~coldbrew.models.Recommender.recommend` of the served model, or, at
``Serving.score_all_below`` items and more, of the same model over its candidates only
(:func:`~coldbrew.live.candidates.ranker`); then the request's diversity and novelty controls
pick the top ``k`` of a larger pool (:mod:`coldbrew.live.controls`), and the explainer words
the model's reasons when asked.
"""

from __future__ import annotations

from dataclasses import replace

from coldbrew.live import candidates, controls, queries
from coldbrew.live.answers import Answer, Query, Recommendation
from coldbrew.live.state import INLINE_ITEMS, Live
from coldbrew.models.candidates import CandidateRecommender
from coldbrew.models.rerank import pool_size


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
    if query.user.text or query.user.attributes or query.explain or query.filters:
        return None
    if query.allowed_ids is not None or len(live.items) > INLINE_ITEMS:
        return None
    with live.lock.try_read() as free:
        if not free:
            return None
        asked = queries.asked(live, query)
        if asked.user.text or asked.user.attributes:
            return None
        return ranked(live, query, asked)


def ranked(live: Live, query: Query, asked: queries.Asked | None = None) -> Answer:
    """The body of :func:`recommend`; the caller holds the read lock (and may have joined
    the request with the live state already: ``asked``)."""
    asked = asked or queries.asked(live, query)
    model, info = live.model, live.info
    if model is None:  # no items yet: nothing to recommend
        return Answer([], info.version, info.kind)
    if asked.user.is_empty():
        raise ValueError(
            "nothing is known about this user yet: give text, attributes or liked items"
        )
    ranker = candidates.ranker(live, model)
    n = pool_size(query.k) if query.diversity or query.novelty else query.k
    found = ranker.recommend(
        asked.user, n, exclude=asked.exclude, candidates=asked.allowed, exclude_seen=False
    )
    found = controls.controlled(live, found, query)
    recs = [Recommendation(live.items[i], float(s)) for i, s in zip(found.ids, found.scores)]
    if query.explain and recs:
        # the request's own words only, where the stored profile may not be quoted
        quotable = None if query.quote_profile else replace(query.user, user_id=None)
        subset = isinstance(ranker, CandidateRecommender)
        live.explainer.explain(model, asked.user, recs, quotable, subset=subset)
    return Answer(recs, info.version, info.kind)
