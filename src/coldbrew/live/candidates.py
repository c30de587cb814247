"""Candidates: in a large catalogue only some items are scored for a request.

At ``Serving.score_all_below`` items and more, the served model's parts propose items (exact
tops over CF factors, the most popular, the newest without interactions), the language model
adds its nearest items in the item index, and only these are scored
(:meth:`~coldbrew.models.Recommender.score_rows`).
"""

from __future__ import annotations

import numpy as np

from coldbrew.index.exact import top_k
from coldbrew.live.state import Live
from coldbrew.models.base import Recommendations, Recommender, UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender


def candidates(live: Live, model: Recommender, query: UserQuery, exclude: set[str]) -> np.ndarray:
    """Item rows (of ``model``) worth scoring for ``query`` in a large catalogue: what the
    model's parts propose (exact tops over CF factors, the most popular, the newest items
    without interactions) and the language model's nearest items in the item index."""
    n = live.serving.candidates
    rows = [model.propose(query, n)]
    text_model = _text_model(model)
    if text_model is not None:
        vector = text_model.user_vectors([text_model.resolve(query)])[0]
        if np.any(vector):
            ids, _ = live.index.search(vector[None, :], n, exclude=[exclude])
            rows.append(model.item_ids.rows(ids[0], skip_unknown=True))
    found: np.ndarray = np.unique(np.concatenate(rows)).astype(np.int64)
    return found


def recommend_candidates(
    live: Live,
    model: Recommender,
    query: UserQuery,
    k: int,
    exclude: set[str],
    allowed: set[str] | None,
) -> Recommendations:
    """The top ``k`` of the candidates only (:func:`candidates`; an allowed subset smaller
    than the candidates is scored whole)."""
    if allowed is not None and len(allowed) <= 4 * live.serving.candidates:
        rows = model.item_ids.rows(sorted(allowed), skip_unknown=True)
    else:
        rows = candidates(live, model, query, exclude)
        if allowed is not None:
            rows = rows[np.isin(rows, model.item_ids.rows(allowed, skip_unknown=True))]
    banned = model.item_ids.rows(exclude, skip_unknown=True)
    rows = rows[~np.isin(rows, banned)]
    scores = model.score_rows([query], rows)[0]
    order = top_k(scores, k)[0]
    order = order[np.isfinite(scores[order])]
    return Recommendations(model.item_ids.ids(rows[order]), scores[order])


def _text_model(model: Recommender) -> ZeroShotRecommender | None:
    """The language-model part of ``model`` (itself, for a zero-shot model), if it has one."""
    for part in model.named_parts().values():
        if isinstance(part, ZeroShotRecommender):
            return part
    return None
