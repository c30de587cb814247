"""What the quality floors on real data share: the bench's rows by protocol and model, a
metric's 95% interval as the bench reports it, and issue 24's rule that the default hybrid is
below none of its parts nor popularity beyond the interval."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from coldbrew.bench.runner import BenchConfig, ResultRow, run_benchmark
from coldbrew.data.schema import Dataset

Rows = dict[tuple[str, str], ResultRow]


def floors_config(
    protocols: tuple[str, ...], models: tuple[str, ...], max_users: int | None = None
) -> BenchConfig:
    """The bench's settings for a floor: seed 42, ``max_users`` test users a protocol (the
    bench's seeded sample; None: all), 200 bootstrap resamples, no latency worth the name."""
    return BenchConfig(
        protocols=protocols,
        models=models,
        max_users=max_users,
        latency_users=2,
        bootstrap_resamples=200,
        show_progress=False,
    )


def bench_rows(dataset: Dataset, config: BenchConfig, cache: Path | None = None) -> Rows:
    """Every model of ``config`` on every protocol, through the public benchmark runner,
    keyed by ``(protocol, model)``; ``cache``: a folder for the embedding cache, so the
    models that read the language model encode the catalogue once."""
    if cache is not None:
        config = replace(config, cache_dir=str(cache / "cache"))
    run = run_benchmark(dataset, config)
    return {(row.protocol, row.model): row for row in run.rows}


def interval(row: ResultRow, metric: str) -> tuple[float, float]:
    """The bench's 95% interval of ``metric`` (NDCG@20's is every row's headline)."""
    return row.ndcg20_ci95 if metric == "ndcg@20" else row.intervals[metric]


def assert_not_below(hybrid: ResultRow, others: Iterable[ResultRow], metric: str) -> None:
    """Issue 24: the blend never loses to its own parts, by the bench's own intervals: the
    hybrid's ``metric`` is at least the best other row's less half that row's interval."""
    best = max(others, key=lambda row: row.metrics[metric])
    low, high = interval(best, metric)
    figures = (best.model, best.metrics[metric], hybrid.metrics[metric])
    assert hybrid.metrics[metric] >= best.metrics[metric] - (high - low) / 2, figures
