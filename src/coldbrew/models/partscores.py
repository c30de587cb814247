"""Each part's scores as a hybrid blends them: z-scored per query over every item
(:func:`part_scores`), or over some item rows only, z-scored by the part's mean and spread over
a fixed sample of the catalogue (:func:`part_scores_of`, :func:`reference_sample`); and the
newest items no one has touched, which a large catalogue's request always scores
(:func:`newest_cold`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.weights import standardize, standardize_by

REFERENCE = 2000
"""How many sampled items stand in for the catalogue when only candidates are scored."""


def part_scores(
    parts: Mapping[str, Recommender],
    queries: Sequence[UserQuery],
    n_items: int,
    needed: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Each part's standardised scores over all ``n_items`` items; zeros for parts not
    ``needed``.

    Raises
    ------
    ValueError
        When a part scores another number of items (its catalogue is not the hybrid's).
    """
    out = []
    for j, (name, part) in enumerate(parts.items()):
        if needed is not None and not needed[j]:
            out.append(np.zeros((len(queries), n_items), dtype=np.float32))
            continue
        scores = part.score(queries)
        if scores.shape[1] != n_items:
            raise ValueError(f"part {name!r} scores {scores.shape[1]} items, expected {n_items}")
        out.append(standardize(scores))
    return out


def part_scores_of(
    parts: Mapping[str, Recommender],
    queries: Sequence[UserQuery],
    rows: np.ndarray,
    reference: np.ndarray,
    needed: np.ndarray,
) -> list[np.ndarray]:
    """Each part's scores of item ``rows``, standardised by its scores of the ``reference``
    rows; zeros for parts not ``needed`` (they weigh nothing for these queries: not scored)."""
    out = []
    for j, part in enumerate(parts.values()):
        if not needed[j]:
            out.append(np.zeros((len(queries), len(rows)), dtype=np.float32))
            continue
        scores = part.score_with_reference(queries, rows, reference)
        out.append(standardize_by(scores[:, : len(rows)], scores[:, len(rows) :]))
    return out


def reference_sample(n_items: int, size: int, seed: int) -> np.ndarray:
    """``size`` item rows of ``n_items`` (all where fewer), drawn with ``seed``, sorted."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_items, min(size, n_items), replace=False))


def newest_cold(counts: np.ndarray, active: np.ndarray, n: int) -> np.ndarray:
    """The last ``n`` active item rows no one has interacted with (``counts`` 0; new items are
    appended), found from the end of the catalogue, not over all of it at every request."""
    size = len(counts)
    found: list[np.ndarray] = []
    end, step = size, 4 * max(n, 1)
    while end > 0 and sum(map(len, found)) < n:
        start = max(end - step, 0)
        cold = (counts[start:end] == 0) & active[start:end]
        found.insert(0, start + np.flatnonzero(cold))
        end, step = start, 2 * step
    rows: np.ndarray = np.concatenate([np.zeros(0, dtype=np.int64), *found])[-n:]
    return rows
