"""The request's diversity and novelty controls over the live catalogue: the top ``k`` of a
larger pool of the served model's answers (:mod:`coldbrew.models.rerank`)."""

from __future__ import annotations

import numpy as np

from coldbrew.live.answers import Query
from coldbrew.live.state import Live
from coldbrew.models.query import Recommendations
from coldbrew.models.rerank import rerank


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
