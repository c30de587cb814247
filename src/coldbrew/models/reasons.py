"""Why a model scored an item (:meth:`~coldbrew.models.base.Recommender.explain`).

A :class:`Reason` names the evidence a model has, in data (a liked item and how close it is,
the attribute value among whose users the item is popular); the service puts it into words. The
helpers here find the liked item that counts most, in a model's own vectors or item-item links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from coldbrew.data.idmap import IdMap

ReasonKind = Literal[
    "none",
    "popular",
    "in_context",
    "text",
    "profile",
    "context",
    "words",
    "meaning",
    "also_liked",
    "mapped",
    "went_on",
    "unlearned",
]
LIKED_KINDS: tuple[ReasonKind, ...] = ("meaning", "also_liked", "mapped", "went_on")
"""The kinds of reason that cite a liked item (:attr:`Reason.item_id`)."""


@dataclass(frozen=True)
class Reason:
    """Why a model scored one item: the part of its score that counted most, and its evidence.

    Parameters
    ----------
    kind
        What the evidence is. ``"none"``: no reason (the default). ``"popular"``: popular, among
        the users who share an attribute value if :attr:`features` names one. ``"in_context"``:
        popular in the query's context (:attr:`features`: the context features it sells more
        under). ``"text"``, ``"profile"``, ``"context"``: close in meaning to the user's words,
        their attributes, the query's context. ``"words"``: the words of the query or of the
        liked items. Citing the liked :attr:`item_id` (``None``: none could be named):
        ``"meaning"`` close in meaning, ``"also_liked"`` liked by the same people, ``"mapped"``
        described like what its fans went on to like, ``"went_on"`` what its fans went on to
        like. ``"unlearned"``: the user liked items the model learned nothing of.
    part
        The part of the score that counted most (a blend's part, a language model's
        ``"text"``, ``"attributes"``, ``"liked"`` or ``"context"``, else the model's kind).
    shares
        Every part's contribution to the item's score, rounded to 4 decimals.
    item_id
        The liked item cited.
    value
        How much it counted: the cosine of the two items, their item-item similarity, or
        (``"went_on"``) the share of what followed the liked item that was this one.
    features
        ``(attribute or context feature, value, lift)``: where the item is more popular than
        overall.
    """

    kind: ReasonKind = "none"
    part: str = ""
    shares: Mapping[str, float] = field(default_factory=dict)
    item_id: str | None = None
    value: float = 0.0
    features: tuple[tuple[str, Any, float], ...] = ()


def closest(vectors: np.ndarray, row: int, rows: np.ndarray) -> tuple[int, float]:
    """Which of ``rows`` is closest (cosine) to ``row``, and how close."""
    v = vectors[row].astype(np.float32)  # a compact index keeps float16 or int8 rows
    others = vectors[rows].astype(np.float32)
    sims = others @ v / np.maximum(np.linalg.norm(others, axis=1) * np.linalg.norm(v), 1e-12)
    best = int(np.argmax(sims))
    return int(rows[best]), float(sims[best])


def closest_liked(
    ids: IdMap, vectors: np.ndarray, liked_ids: Sequence[str], row: int, kind: ReasonKind
) -> Reason:
    """The item of ``liked_ids`` whose row of ``vectors`` (the model's own space, its rows
    numbered by ``ids``) is closest to ``row``'s, as a reason of ``kind``."""
    liked = ids.rows(liked_ids, skip_unknown=True)
    if not len(liked) or row >= len(vectors):
        return Reason(kind)
    liked = liked[liked < len(vectors)]
    if not len(liked):
        return Reason("unlearned")
    best, similarity = closest(np.asarray(vectors), row, liked)
    return Reason(kind, item_id=ids.id(best), value=similarity)


def strongest_link(
    ids: IdMap,
    links: sp.csr_matrix,
    liked: np.ndarray,
    row: int,
    kind: ReasonKind,
    weights: np.ndarray | None = None,
) -> Reason:
    """The liked item (of rows ``liked``) whose learned link to ``row`` (``links``, an item ×
    item sparse matrix: similarities, or what came next with ``weights`` per liked row) added
    most to its score, as a reason of ``kind``. What came next is given as a share: of that
    item's positive links (what followed it, counted; or what a regression says follows it),
    how much was this one's."""
    keep = liked < links.shape[0]
    liked = liked[keep]
    sims = np.asarray(links[liked][:, [row]].todense()).ravel() if len(liked) else liked
    if not len(liked) or sims.max() <= 0:
        return Reason(kind)
    added = sims if weights is None else sims * weights[keep]
    best = int(np.argmax(added))
    value = float(sims[best])
    if weights is not None:
        positive = links[liked[best]].data
        value /= max(float(positive[positive > 0].sum()), 1e-12)
    return Reason(kind, item_id=ids.id(int(liked[best])), value=value)
