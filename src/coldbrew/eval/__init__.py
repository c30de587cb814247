"""Evaluation: metrics and protocols (splits); the loop that runs a model over them is
:mod:`coldbrew.bench.evaluate`."""

from coldbrew.eval.metrics import (
    bootstrap_ci,
    coverage_at_k,
    f1_at_k,
    hit_rate_at_k,
    mean_metric,
    mrr_at_k,
    ndcg_at_k,
    popularity_percentile_at_k,
    popularity_percentiles,
    precision_at_k,
    recall_at_k,
)

__all__ = [
    "bootstrap_ci",
    "coverage_at_k",
    "f1_at_k",
    "hit_rate_at_k",
    "mean_metric",
    "mrr_at_k",
    "ndcg_at_k",
    "popularity_percentile_at_k",
    "popularity_percentiles",
    "precision_at_k",
    "recall_at_k",
]
