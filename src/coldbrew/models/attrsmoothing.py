"""Choosing how far attribute popularity trusts the users who share a new user's attribute
values, on the hybrid's validation.

:class:`~coldbrew.models.baselines.AttributePopularityRecommender` smooths ``P(item | value)``
towards ``P(item)`` by ``smoothing`` times all training positives, the same pull for every
value: at 1 a value held by 2% of the positives (a small country on online-retail) keeps 2% of
its lift, so the part ranks almost as plain popularity; at 0.1 the bench's random cold-user
split ranks new users' likes better, while on the time-ordered replay streams of MovieLens 1
ranked new users' first likes better (``models/recipes.py``). No one value is right for every
catalogue, so the hybrid chooses it per fit among candidates, on its inner validation's held-out
users who revealed nothing (the users whose answer the part is), keeping the part's own value
unless another wins out of fold by more than its standard error
(:func:`~coldbrew.models.settingchoice.choose_setting`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from coldbrew.models.baselines import AttributePopularityRecommender
from coldbrew.models.selection import ValTask
from coldbrew.models.settingchoice import choose_setting


def smoothing_candidates(values: Sequence[float], reference: float) -> tuple[float, ...]:
    """``values`` and ``reference`` (always a candidate), sorted, each once.

    Raises
    ------
    ValueError
        For a smoothing that is not a finite positive number.
    """
    for s in (*values, reference):
        if not 0.0 < float(s) < float("inf"):
            raise ValueError(f"attribute smoothings must be finite numbers > 0, got {s!r}")
    return tuple(sorted({float(reference), *(float(s) for s in values)}))


def revealed_nothing(tasks: Sequence[ValTask]) -> list[ValTask]:
    """The validation tasks of held-out users who revealed nothing: no liked item, nothing
    excluded, items with training interactions (the inner validation's k = 0 users)."""
    return [
        t
        for t in tasks
        if t.cell == 1 and t.queries and not any(q.liked for q in t.queries) and not any(t.exclude)
    ]


def choose_smoothing(
    part: AttributePopularityRecommender,
    tasks: Sequence[ValTask],
    smoothings: Sequence[float],
    reference: float,
    seed: int,
) -> dict[str, Any]:
    """Set ``part.smoothing`` to the candidate (:func:`smoothing_candidates`) that ranks the
    validation's users who revealed nothing best, unless it does not beat ``reference`` out
    of fold by more than its standard error; returns what the choice saw."""
    candidates = smoothing_candidates(smoothings, reference)
    return choose_setting(part, "smoothing", candidates, reference, revealed_nothing(tasks), seed)


def smoothed_parts(parts: Mapping[str, Any]) -> dict[str, AttributePopularityRecommender]:
    """The parts whose smoothing the hybrid chooses: attribute popularity proper (not its
    context-conditioned subclass, whose features come with events, not users)."""
    return {n: p for n, p in parts.items() if type(p) is AttributePopularityRecommender}


def references(parts: Mapping[str, Any], smoothings: Sequence[float]) -> dict[str, float]:
    """Each attribute-popularity part's own smoothing (:func:`smoothed_parts`), the reference
    another candidate must beat on every fit.

    Raises
    ------
    ValueError
        When a candidate in ``smoothings`` is not a finite positive number.
    """
    found = {name: part.smoothing for name, part in smoothed_parts(parts).items()}
    for reference in found.values():
        smoothing_candidates(smoothings, reference)
    return found


def choose_smoothings(
    parts: Mapping[str, Any],
    reference: Mapping[str, float],
    tasks: Sequence[ValTask],
    smoothings: Sequence[float],
    seed: int,
) -> dict[str, Any]:
    """:func:`choose_smoothing` for each attribute-popularity part in ``parts`` against its
    ``reference``, keyed ``smoothing/<name>`` (nothing without candidates)."""
    if not smoothings:
        return {}
    return {
        f"smoothing/{name}": choose_smoothing(part, tasks, smoothings, reference[name], seed)
        for name, part in smoothed_parts(parts).items()
    }


def keep_smoothings(parts: Mapping[str, Any], previous: Mapping[str, Any]) -> None:
    """Give each attribute-popularity part in ``parts`` the smoothing of ``previous``'s part of
    the same name (a refit that reuses an earlier fit's choices)."""
    for name, part in smoothed_parts(parts).items():
        part.smoothing = getattr(previous.get(name), "smoothing", part.smoothing)
