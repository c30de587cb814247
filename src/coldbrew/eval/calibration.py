"""Scores people can read: where a score stands among the whole catalogue's for that query.

A raw cosine says little on its own: with multilingual-e5 nearly every item of a catalogue scores
between 0.85 and 0.91. The percentile of an item's score among the scores of every item in the
catalogue for the same query (100: nothing scores higher; 50: a middling match) reads the same
whatever the encoder.
"""

from __future__ import annotations

import numpy as np


def score_percentiles(catalogue: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """For each of ``scores``, the share (0-100) of the other finite ``catalogue`` scores below
    it, ties counting half. ``catalogue`` is one query's scores over every item; items removed
    from the catalogue (``-inf``) are left out."""
    pool = np.sort(catalogue[np.isfinite(catalogue)])
    if len(pool) < 2:
        return np.full(len(scores), 100.0)
    below = np.searchsorted(pool, scores, side="left")
    ties = np.searchsorted(pool, scores, side="right") - below
    others_below = below + np.maximum(ties - 1, 0) / 2
    out: np.ndarray = 100.0 * others_below / (len(pool) - 1)
    return out
