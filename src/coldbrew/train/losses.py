"""The losses of contrastive fine-tuning: in-batch softmax over cosines (with the logQ correction
and the positive's repeats masked out) and the distillation of a teacher's in-batch scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise ImportError("training needs: pip install coldbrew[train]") from exc
    return torch


def in_batch_loss(
    queries: Any,
    items: Any,
    item_ids: Sequence[str],
    anchor_ids: Sequence[str],
    scale: float,
    log_q: Any = None,
) -> Any:
    """Cross-entropy of each query against every item in the batch (diagonal = positive).

    ``log_q`` (log sampling probability of each batch item) applies the logQ correction: popular
    items are in-batch negatives more often, and without it the model learns to demote them.
    """
    return in_batch_cross_entropy(scale * queries @ items.T, item_ids, anchor_ids, log_q)


def in_batch_cross_entropy(
    scores: Any, item_ids: Sequence[str], anchor_ids: Sequence[str], log_q: Any = None
) -> Any:
    """:func:`in_batch_loss` on a ready score matrix (queries x items, logits).

    Row ``i``'s positive is column ``i``; columns past the number of rows are extra negatives
    (mined hard negatives). Entries that are ``-inf`` (not scored, e.g. by a cross-encoder that
    scores a few negatives per row) simply take no part; so do repeats of the positive item and
    of the anchor item.
    """
    torch = _require_torch()
    if log_q is not None:
        scores = scores - log_q[None, :]
    ids = np.asarray(item_ids)
    rows = len(anchor_ids)
    same = ids[:rows, None] == ids[None, :]
    # an item equal to the anchor itself is not a useful negative either
    anchors = np.asarray(anchor_ids)
    same |= (anchors[:, None] == ids[None, :]) & (anchors[:, None] != "")
    same[np.arange(rows), np.arange(rows)] = False
    mask = torch.from_numpy(same).to(scores.device)
    scores = scores.masked_fill(mask, float("-inf"))
    labels = torch.arange(len(scores), device=scores.device)
    return torch.nn.functional.cross_entropy(scores, labels)


def distill_loss(student: Any, teacher: np.ndarray, scale: float, kind: str = "kl") -> Any:
    """How far the student's in-batch scores are from the teacher's, row by row.

    ``student`` holds cosines (scaled by ``scale`` into logits); ``teacher`` holds logits, NaN
    where the teacher did not score. ``kl``: KL(teacher || student) between the softmax
    distributions over each row's scored entries. ``margin-mse``: squared error between the
    margins positive - negative (diagonal minus every other scored entry) of both.
    Rows with fewer than two scored entries or all-equal teacher scores (the teacher knows
    nothing there) are skipped.
    """
    if kind not in DISTILL_LOSSES:
        raise ValueError(f"distillation loss must be one of {DISTILL_LOSSES}, got {kind!r}")
    torch = _require_torch()
    target = torch.from_numpy(np.asarray(teacher, dtype=np.float32)).to(student.device)
    scored = torch.isfinite(target)
    filled = torch.where(scored, target, torch.zeros_like(target))
    count = scored.sum(dim=1)
    mean = filled.sum(dim=1) / count.clamp(min=1)
    spread = torch.where(scored, (filled - mean[:, None]) ** 2, torch.zeros_like(filled)).sum(1)
    rows = (count >= 2) & (spread > 1e-10) & scored.diagonal()
    if not bool(rows.any()):
        return student.sum() * 0.0
    logits = scale * student[rows]
    target, scored = filled[rows], scored[rows]
    if kind == "kl":
        p = torch.softmax(target.masked_fill(~scored, float("-inf")), dim=1)
        log_q = torch.log_softmax(logits.masked_fill(~scored, float("-inf")), dim=1)
        log_q = torch.where(scored, log_q, 0.0)  # no -inf left for the gradient to meet
        return (p * (torch.log(p.clamp(min=1e-12)) - log_q)).sum() / len(target)
    diag = torch.arange(len(rows), device=rows.device)[rows]
    span = torch.arange(len(target), device=target.device)
    negative = scored.clone()
    negative[span, diag] = False
    student_margin = logits[span, diag][:, None] - logits
    teacher_margin = target[span, diag][:, None] - target
    error = (student_margin - teacher_margin) ** 2
    return error[negative].mean()


DISTILL_LOSSES = ("kl", "margin-mse")
