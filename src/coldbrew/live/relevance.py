"""Readable scores for the service: each answer's percentile among the whole catalogue's scores.

Computed through the engine's public :meth:`~coldbrew.live.engine.Engine.recommend` (a second
ranking of every item for the same user, without filters, exclusions, explanations or the
diversity and novelty controls), so it costs about one more request and is only done when asked
(``"relevance": true``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from coldbrew.eval.calibration import score_percentiles
from coldbrew.live.answers import Query, Recommendation
from coldbrew.live.engine import Engine


def relevance(engine: Engine, query: Query, found: list[Recommendation]) -> list[float]:
    """The percentile (0-100) of each of ``found``'s scores among every item's for ``query``."""
    if not found:
        return []
    whole = replace(
        query,
        k=max(engine.stats()["items"], 1),
        filters={},
        allowed_ids=None,
        excluded_ids=(),
        exclude_seen=False,
        explain=False,
        diversity=0.0,
        novelty=0.0,
    )
    catalogue = np.asarray([r.score for r in engine.recommend(whole)], dtype=np.float32)
    scores = np.asarray([r.score for r in found], dtype=np.float32)
    return [round(float(p), 1) for p in score_percentiles(catalogue, scores)]
