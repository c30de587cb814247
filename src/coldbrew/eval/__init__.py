"""Evaluation: metrics, protocols (splits) and the evaluation loop."""

from coldbrew.eval.metrics import (
    f1_at_k,
    hit_rate_at_k,
    mean_metric,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

__all__ = [
    "f1_at_k",
    "hit_rate_at_k",
    "mean_metric",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]
