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

from coldbrew.models.context import context_sentence
from coldbrew.models.contextcf import ContextALSRecommender
from coldbrew.models.selection import ValTask
from coldbrew.models.settingchoice import choose_setting
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
    return choose_setting(part, "context_weight", candidates, 0.0, judged, seed, "ndcg_by_weight")
