"""What ranks a request: the served model, or in a large catalogue the same model scoring only
its candidates.

At ``Serving.score_all_below`` items and more, the served model is wrapped in a
:class:`~coldbrew.models.candidates.CandidateRecommender` over the live item index: its parts
propose items (exact tops over CF factors, the most popular, the newest without interactions),
the language model adds its nearest items in the index, and only these are scored.
"""

from __future__ import annotations

from coldbrew.live.state import Live
from coldbrew.models.base import Recommender
from coldbrew.models.candidates import CandidateRecommender


def ranker(live: Live, model: Recommender) -> Recommender:
    """``model``, or above ``Serving.score_all_below`` items, ``model`` over its candidates
    (``Serving.candidates`` a part) with the live index, which the engine keeps current."""
    if len(model.item_ids) < live.serving.score_all_below:
        return model
    return CandidateRecommender(model, live.index, live.serving.candidates)
