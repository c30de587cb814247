"""Choosing a blend's weights on validation without fitting its noise.

A grid search over hundreds of weightings finds, on a few hundred validation queries, a blend
that looks better than any single part whether or not it is (the winner's curse: the best of
many noisy means is biased upwards). So a blend only replaces the *reference* (the best single
part, or weights chosen on more data) when it wins **out of fold**: the queries are split in
halves, each half's weights are chosen on the other half, and the paired per-query gain of those
choices over the reference's, on the queries they did not see, must exceed its standard error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from coldbrew.models.base import UserQuery


@dataclass
class ValTask:
    """Validation queries of one kind: which item bucket they tune, and what they must find."""

    cell: int  # 0: items without training interactions, 1: the others
    queries: list[UserQuery]
    exclude: list[set[str]]
    relevant: list[set[str]]
    candidates: list[str] | None
    # per query: asked for the user's latest likes (else random ones, or not a warm query)
    latest: list[bool] | None = None


Chooser = Callable[[np.ndarray], int]
"""Picks a grid row from ``(grid points, queries)`` validation scores."""

REPEATS = 3
"""How many random halvings the out-of-fold gain is averaged over."""

SHAPE_MIN = 4
"""The fewest queries of a shape (random or latest likes held out) a shape is judged on."""


def holds_both_shapes(latest: np.ndarray) -> bool:
    """Whether the queries' shapes (``latest``, per query) hold :data:`SHAPE_MIN` or more of
    each."""
    return bool(min(latest.sum(), (~latest).sum()) >= SHAPE_MIN)


def best_single(grid: np.ndarray) -> Chooser:
    """The grid row of one part alone (or, when no row is, any row) with the highest mean."""
    singles = np.flatnonzero((grid > 0).sum(axis=1) == 1)
    rows = singles if len(singles) else np.arange(len(grid))

    def choose(scores: np.ndarray) -> int:
        return int(rows[np.argmax(scores[rows].mean(axis=1))])

    return choose


def always(row: int) -> Chooser:
    """Always ``row`` (weights chosen elsewhere, on more data)."""
    return lambda scores: row


def out_of_fold_gain(
    scores: np.ndarray, candidate: Chooser, reference: Chooser, seed: int
) -> tuple[float, float]:
    """Mean per-query gain of ``candidate``'s choice over ``reference``'s when both choose on
    one half of the queries and are scored on the other, and its standard error.

    ``scores`` is ``(grid points, queries)``; each query's gain is averaged over
    :data:`REPEATS` random halvings (:func:`out_of_fold_gains`). With fewer than four queries
    there is nothing to hold out: the gain is 0 with an infinite error.
    """
    if scores.shape[1] < 4:
        return 0.0, float("inf")
    return mean_and_error(out_of_fold_gains(scores, candidate, reference, seed))


def out_of_fold_gains(
    scores: np.ndarray, candidate: Chooser, reference: Chooser, seed: int
) -> np.ndarray:
    """Each query's gain of ``candidate``'s choice over ``reference``'s, both chosen on the
    half of the queries it was not in, averaged over :data:`REPEATS` random halvings."""
    n = scores.shape[1]
    rng = np.random.default_rng(seed)
    gain = np.zeros(n)
    for _ in range(REPEATS):
        half = rng.permutation(n) < n // 2
        for fit in (half, ~half):
            rows = (candidate(scores[:, fit]), reference(scores[:, fit]))
            gain[~fit] += scores[rows[0], ~fit] - scores[rows[1], ~fit]
    gain /= REPEATS
    return gain


def mean_and_error(values: np.ndarray) -> tuple[float, float]:
    """The mean of ``values`` and its standard error (infinite with fewer than two)."""
    if len(values) < 2:
        return float(np.mean(values)) if len(values) else 0.0, float("inf")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def keep_unless_beaten(
    scores: np.ndarray, candidate: Chooser, reference: Chooser, seed: int
) -> tuple[int, float, float]:
    """``candidate``'s row on all queries when it beats ``reference``'s out of fold by more than
    a standard error, else ``reference``'s row; with that gain and its error
    (:func:`out_of_fold_gain`)."""
    gain, se = out_of_fold_gain(scores, candidate, reference, seed)
    return (candidate(scores) if gain > se else reference(scores)), gain, se


def keep_unless_beaten_on_every_shape(
    scores: np.ndarray, candidate: Chooser, reference: Chooser, seed: int, latest: np.ndarray
) -> tuple[int, float, float, dict[str, float]]:
    """:func:`keep_unless_beaten`, and besides: ``candidate``'s row replaces ``reference``'s
    only if, on each shape of query (``latest``, per query: asked for the user's latest likes,
    else random ones) with at least four queries, the paired per-query difference between the
    two rows chosen on all the queries is at least minus its standard error. A blend that wins
    the pool on one shape's queries and loses the other's is not kept (issue 24).

    The shapes compare the two rows themselves, not out of fold: the out-of-fold gain judges
    the *procedure* (each half's reference can be another part, which loses where the whole
    pool's would not), and on ml-1m it hid a blend 0.83x the best part on the random-shaped
    queries. In sample the candidate is the pool's winner, which flatters it: a loss seen there
    is a loss. Also returns each shape's difference and error (``gain_random``,
    ``se_random``, ``gain_latest``, ``se_latest``; none when the two rows are one)."""
    best, gain, se = keep_unless_beaten(scores, candidate, reference, seed)
    ref = reference(scores)
    if best == ref:
        return best, gain, se, {}
    diff = scores[best] - scores[ref]
    shapes: dict[str, float] = {}
    for name, rows in (("random", ~latest), ("latest", latest)):
        if rows.sum() < SHAPE_MIN:
            continue
        shapes[f"gain_{name}"], shapes[f"se_{name}"] = mean_and_error(diff[rows])
        if shapes[f"gain_{name}"] < -shapes[f"se_{name}"]:
            best = ref
    return best, gain, se, shapes


def each_shape_at_its_best(
    scores: np.ndarray, grid: np.ndarray, latest: np.ndarray, default: int | None = None
) -> tuple[int, dict[str, float]]:
    """The grid row whose worse shape of query is best against that shape's own best single
    part (maximin over shapes), or the simplest row tied with it on every shape.

    ``scores`` is ``(grid points, queries)`` and ``latest`` each query's shape (asked for the
    user's latest likes, else random ones); both shapes need :data:`SHAPE_MIN` queries. A row's
    *ratio* on a shape is its mean there over the best single part's mean there; the top row
    has the highest smaller ratio (of those, the highest mean ratio). A row is tied with the
    top when, on each shape, its paired mean deficit against the top is within one standard
    error; among tied rows ``default`` wins when it is one, else the fewest parts, then the
    higher smaller ratio, then the higher mean ratio. The pooled search lets one shape's best
    part win blends that lose the other shape's (issue 24: ``cf_map`` + ``transitions`` on
    ml-1m, 0.83x ``cf_map`` on the random-shaped queries); this one keeps neither shape far
    from its best part when a row can. Returns the row and, per shape, the best part's mean
    and the chosen row's ratio."""
    shapes = {"random": ~latest, "latest": latest}
    singles = np.flatnonzero((grid > 0).sum(axis=1) == 1)
    rows = singles if len(singles) else np.arange(len(grid))
    means = np.stack([scores[:, on].mean(axis=1) for on in shapes.values()])
    best = means[:, rows].max(axis=1)
    ratios = means / np.maximum(best, 1e-12)[:, None]
    worst, mean = ratios.min(axis=0), ratios.mean(axis=0)
    top = int(np.lexsort((-mean, -worst))[0])  # the best worse shape, then the best mean
    tied = np.ones(len(grid), dtype=bool)
    for on in shapes.values():
        deficit = scores[top, on][None, :] - scores[:, on]
        se = deficit.std(axis=1, ddof=1) / np.sqrt(on.sum())
        tied &= deficit.mean(axis=1) <= se
    if default is not None and tied[default]:
        chosen = default
    else:
        sizes = (grid > 0).sum(axis=1)
        chosen = int(min(np.flatnonzero(tied), key=lambda g: (sizes[g], -worst[g], -mean[g])))
    report: dict[str, float] = {}
    for s, name in enumerate(shapes):
        report[f"best_part_{name}"] = float(best[s])
        report[f"ratio_{name}"] = float(ratios[s, chosen])
    return chosen, report
