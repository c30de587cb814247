"""Choosing one setting of a hybrid's part on the hybrid's inner validation: each candidate
value ranks the validation queries with that part alone, and a value replaces the reference
only when it wins **out of fold** by more than its standard error
(:func:`~coldbrew.models.selection.keep_unless_beaten`), so a setting that does not help is
never forced on. The context weights (:mod:`coldbrew.models.contextweight`) and the attribute
smoothing (:mod:`coldbrew.models.attrsmoothing`) are chosen this way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from coldbrew.eval.metrics import ndcg_at_k_scores
from coldbrew.models.base import Recommender
from coldbrew.models.selection import ValTask, always, keep_unless_beaten


def task_ndcg(part: Recommender, task: ValTask) -> np.ndarray:
    """NDCG@20 of ``part`` alone on each of ``task``'s queries (excluded items and, when the
    task names candidates, every other item cannot rank)."""
    scores = part.score(task.queries)
    if task.candidates is not None:
        allowed = np.zeros(scores.shape[1], dtype=bool)
        allowed[part.item_ids.rows(task.candidates, skip_unknown=True)] = True
        scores[:, ~allowed] = -np.inf
    relevant = np.zeros(scores.shape, dtype=bool)
    n_relevant = np.zeros(len(scores), dtype=np.int64)
    for q, (ex, rel) in enumerate(zip(task.exclude, task.relevant, strict=True)):
        scores[q, part.item_ids.rows(ex, skip_unknown=True)] = -np.inf
        rows = part.item_ids.rows(rel, skip_unknown=True)
        rows = rows[np.isfinite(scores[q, rows])]
        relevant[q, rows], n_relevant[q] = True, len(rows)
    return ndcg_at_k_scores(scores, relevant, n_relevant, 20)


def choose_setting(
    part: Recommender,
    name: str,
    candidates: Sequence[float],
    reference: float,
    judged: Sequence[ValTask],
    seed: int,
    means_key: str = "ndcg_by_value",
) -> dict[str, Any]:
    """Set ``part``'s attribute ``name`` to the value among ``candidates`` (``reference`` one
    of them) that ranks the ``judged`` queries best, unless it does not beat ``reference`` out
    of fold by more than its standard error; returns what the choice saw: the number of
    queries, the chosen value, each value's mean NDCG@20 (under ``means_key``) and the out-of-fold
    gain with its standard error."""
    setattr(part, name, reference)
    if len(candidates) == 1 or not judged:
        return {"queries": 0, name: reference}
    rows = []
    for value in candidates:
        setattr(part, name, value)
        rows.append(np.concatenate([task_ndcg(part, t) for t in judged]))
    ndcg = np.asarray(rows)
    ndcg = ndcg[:, ~np.isnan(ndcg).any(axis=0)]
    setattr(part, name, reference)
    if not ndcg.shape[1]:
        return {"queries": 0, name: reference}
    kept = always(list(candidates).index(reference))
    best, gain, se = keep_unless_beaten(ndcg, lambda s: int(np.argmax(s.mean(axis=1))), kept, seed)
    setattr(part, name, candidates[best])
    means = {str(v): round(float(m), 4) for v, m in zip(candidates, ndcg.mean(axis=1))}
    return {
        "queries": int(ndcg.shape[1]),
        name: candidates[best],
        means_key: means,
        "oof_gain": gain,
        "oof_gain_se": se,
    }
