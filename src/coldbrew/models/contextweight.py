"""Choosing how much a part reads the query's context, on the hybrid's validation.

A language-model part (:class:`~coldbrew.models.zeroshot.ZeroShotRecommender`) adds the query's
context, encoded as a sentence, to the user vector with a weight ``w``; a context-aware factor
part (:class:`~coldbrew.models.contextcf.ContextALSRecommender`) adds the learned vectors of the
context's features to it with a weight ``w``. Each candidate ``w`` ranks
the inner validation's queries that carry a context with that part alone; ``w = 0`` (context-blind)
is always a candidate and the reference: another weight replaces it only when it wins **out of
fold** by more than its standard error (:func:`~coldbrew.models.selection.keep_unless_beaten`),
so a context that does not help is never forced on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from coldbrew.eval.metrics import ndcg_at_k_scores
from coldbrew.models.context import context_sentence
from coldbrew.models.contextcf import ContextALSRecommender
from coldbrew.models.selection import ValTask, always, keep_unless_beaten
from coldbrew.models.zeroshot import ZeroShotRecommender

CONTEXT_WEIGHTED = (ZeroShotRecommender, ContextALSRecommender)
"""The kinds of part that have a ``context_weight`` the hybrid chooses."""
ContextWeighted = ZeroShotRecommender | ContextALSRecommender


def context_candidates(weights: Sequence[float]) -> tuple[float, ...]:
    """``weights`` sorted, with 0 added when missing (context-blind is always a candidate).

    Raises
    ------
    ValueError
        For a negative or non-finite weight.
    """
    for w in weights:
        if not 0.0 <= float(w) < float("inf"):
            raise ValueError(f"context_weights must be finite numbers >= 0, got {w!r}")
    return tuple(sorted({0.0, *(float(w) for w in weights)}))


def task_ndcg(part: ContextWeighted, task: ValTask) -> np.ndarray:
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


def with_context(tasks: Sequence[ValTask]) -> list[ValTask]:
    """Each task with only its queries that carry a context in words (tasks left empty go)."""
    out = []
    for task in tasks:
        keep = [q for q, query in enumerate(task.queries) if context_sentence(query.context)]
        if keep:
            queries = [task.queries[q] for q in keep]
            exclude, relevant = [task.exclude[q] for q in keep], [task.relevant[q] for q in keep]
            out.append(replace(task, queries=queries, exclude=exclude, relevant=relevant))
    return out


def choose_context_weight(
    part: ContextWeighted, tasks: Sequence[ValTask], weights: Sequence[float], seed: int
) -> dict[str, Any]:
    """Set ``part.context_weight`` to the candidate (:func:`context_candidates`) that ranks the
    validation queries carrying a context best, unless it does not beat 0 out of fold by more
    than its standard error; returns what the choice saw (each weight's mean NDCG@20)."""
    candidates = context_candidates(weights)
    judged = with_context(tasks)
    part.context_weight = 0.0
    if len(candidates) == 1 or not judged:
        return {"queries": 0, "context_weight": 0.0}
    rows = []
    for w in candidates:
        part.context_weight = w
        rows.append(np.concatenate([task_ndcg(part, t) for t in judged]))
    ndcg = np.asarray(rows)
    ndcg = ndcg[:, ~np.isnan(ndcg).any(axis=0)]
    if not ndcg.shape[1]:
        part.context_weight = 0.0
        return {"queries": 0, "context_weight": 0.0}
    best, gain, se = keep_unless_beaten(
        ndcg, lambda s: int(np.argmax(s.mean(axis=1))), always(0), seed
    )
    part.context_weight = candidates[best]
    means = {str(w): round(float(m), 4) for w, m in zip(candidates, ndcg.mean(axis=1))}
    return {
        "queries": int(ndcg.shape[1]),
        "context_weight": part.context_weight,
        "ndcg_by_weight": means,
        "oof_gain": gain,
        "oof_gain_se": se,
    }
