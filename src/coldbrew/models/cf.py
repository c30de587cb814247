"""Collaborative-filtering baselines: ALS and BPR (``implicit``) and item-item cosine KNN.

They learn from interactions only, so they cannot see a brand-new item's text. Two modes are out
of their reach and fall back to most-popular, visibly:

* a user with no trained vector and no liked item the model knows (a 0-shot user) gets the
  popularity ranking (:meth:`CFRecommender.is_fallback` says so);
* an item with no training interaction (a cold item) has no collaborative signal; it is scored
  below every item that has one, ordered as most-popular orders it (training count, then a hash
  of its id: never catalogue position) (:attr:`CFRecommender.item_has_signal`).

A few-shot user is *folded in*, not retrained: ALS and BPR solve a ridge problem against the
fixed item factors (for ALS the same weighted least squares ``implicit`` solves in training),
ItemKNN sums the similarity rows of the liked items.

``implicit`` is an optional dependency (``pip install coldbrew[cf]``); it is imported in ``fit``.

The shared part is :mod:`coldbrew.models.cfbase`, the models are in
:mod:`coldbrew.models.factors` and :mod:`coldbrew.models.itemknn`; this module names them all
(``coldbrew.models.cf.ALSRecommender`` and the rest stay where users import them from).
"""

from __future__ import annotations

from coldbrew.models.cfbase import (
    CFRecommender,
    csr_arrays,
    csr_from_arrays,
    grown_square,
    interaction_matrix,
    popularity_scores,
    rank_below,
    ridge_fold_in,
)
from coldbrew.models.factors import WARM_ITERATIONS, ALSRecommender, BPRRecommender
from coldbrew.models.itemknn import ItemKNNRecommender

__all__ = [
    "WARM_ITERATIONS",
    "ALSRecommender",
    "BPRRecommender",
    "CFRecommender",
    "ItemKNNRecommender",
    "csr_arrays",
    "csr_from_arrays",
    "grown_square",
    "interaction_matrix",
    "popularity_scores",
    "rank_below",
    "ridge_fold_in",
]
