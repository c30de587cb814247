"""Run every model on every protocol of one dataset, on the same saved splits.

For each protocol the split is loaded from ``<out>/splits`` when it is there (and matches the
dataset and seed), made and saved otherwise. Each model is fit once per protocol on the split's
training part, then ranks for every test user: batched for the quality metrics, one query at a
time on a sample of users for latency. Only the public model API is used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from coldbrew.bench.evaluate import QuerySet, build_queries, evaluate_rankings, rank_queries
from coldbrew.bench.system import PeakMemory, now
from coldbrew.data.schema import ITEM_ID, Dataset
from coldbrew.eval.metrics import (
    bootstrap_ci,
    coverage_at_k,
    mean_metric,
    popularity_percentile_at_k,
    popularity_percentiles,
)
from coldbrew.eval.protocols import (
    K_VALUES,
    Split,
    cold_item_split,
    cold_user_split,
    latest_split,
    next_item_split,
    warm_split,
)
from coldbrew.models.base import Recommender
from coldbrew.models.recipes import MODEL_NAMES, ModelContext, make_model
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import runtime_encoder
from coldbrew.text.runtime import DEFAULT_RUNTIME
from coldbrew.text.templates import ItemTemplate

PROTOCOLS = ("cold-item", "cold-user", "warm", "warm-latest", "next-item")
TIMED = frozenset({"warm-latest", "next-item"})
"""Protocols that need timestamps (``--protocol all`` skips them on data without)."""
HEADLINE = "ndcg@20"
INTERVALS = {"next-item": ("recall@10", "ndcg@10")}
"""Metrics given a 95% interval too, beside the headline's, per protocol (next-item reports
@10, as RecBole and UniSRec do)."""


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run's settings (all of them are written into the report)."""

    protocols: tuple[str, ...] = PROTOCOLS
    models: tuple[str, ...] = MODEL_NAMES
    encoder: str = "default"
    runtime: str = DEFAULT_RUNTIME
    """Where the encoder runs (:data:`~coldbrew.text.runtime.RUNTIMES`): as ``coldbrew serve``
    and ``recommend`` run it, by default."""
    device: str = "cpu"
    cache_dir: str | None = None
    seed: int = 42
    k_values: tuple[int, ...] = K_VALUES
    ks: tuple[int, ...] = (10, 20)
    max_users: int | None = None
    latency_users: int = 100
    bootstrap_resamples: int = 1000
    batch_size: int = 256
    show_progress: bool = True

    def __post_init__(self) -> None:
        unknown = [p for p in self.protocols if p not in PROTOCOLS]
        if unknown:
            raise ValueError(f"unknown protocols {unknown}; choose from {', '.join(PROTOCOLS)}")
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be positive, got {self.ks}")


@dataclass
class ResultRow:
    """One model on one protocol (and one ``k`` for cold-user): every number the report shows."""

    dataset: str
    protocol: str
    k: int | None
    seed: int
    model: str
    params: dict[str, Any]
    metrics: dict[str, float]
    ndcg20_ci95: tuple[float, float]
    users: int
    left_out_users: int
    fallback_users: int | None
    candidates: int
    candidates_without_signal: int | None
    fit_seconds: float
    encode_texts_per_s: float | None
    latency_ms_p50: float
    latency_ms_p99: float
    peak_rss_mb: float
    date: str = ""
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    """95% intervals of the protocol's :data:`INTERVALS` metrics (none for most protocols)."""
    blend: list[dict[str, Any]] | None = None
    """A blend's weights for the task's users and what its validation saw (the hybrid)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRow:
        """Read a row back from a JSON report."""
        values = dict(data)
        low, high = values.pop("ndcg20_ci95")
        intervals = {k: (_num(lo), _num(hi)) for k, (lo, hi) in values.pop("intervals", {}).items()}
        return cls(ndcg20_ci95=(_num(low), _num(high)), intervals=intervals, **values)


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)


Task = QuerySet
"""The queries of one protocol (one ``k`` for cold-user) and what each should find."""


@dataclass
class DatasetRun:
    """What :func:`run_benchmark` returns: the rows plus each split's description."""

    rows: list[ResultRow] = field(default_factory=list)
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)


# ---- splits ------------------------------------------------------------------------------
def make_split(dataset: Dataset, protocol: str, config: BenchConfig) -> Split:
    if protocol == "cold-item":
        return cold_item_split(dataset, seed=config.seed)
    if protocol == "cold-user":
        return cold_user_split(dataset, k_values=config.k_values, seed=config.seed)
    if protocol == "warm-latest":
        return latest_split(dataset, seed=config.seed)
    if protocol == "next-item":
        return next_item_split(dataset, seed=config.seed)
    return warm_split(dataset, seed=config.seed)


def load_or_make_split(
    dataset: Dataset, protocol: str, config: BenchConfig, directory: Path | None
) -> Split:
    """The saved split in ``directory`` when it matches this dataset and seed, else a new one."""
    fingerprint = {"positives": len(dataset.positives()), "items": len(dataset.items)}
    if directory is not None and (directory / "split.json").exists():
        split = Split.load(directory)
        same = split.dataset == dataset.name and split.seed == config.seed
        same = same and split.info.get("fingerprint") == fingerprint
        if protocol == "cold-user":
            same = same and split.info.get("k_values") == list(config.k_values)
        if same:
            return split
    split = make_split(dataset, protocol, config)
    split.info["fingerprint"] = fingerprint
    if directory is not None:
        split.save(directory)
    return split


# ---- tasks -------------------------------------------------------------------------------
def _subsample(users: list[str], config: BenchConfig) -> list[str]:
    if config.max_users is None or len(users) <= config.max_users:
        return users
    rng = np.random.default_rng(config.seed)
    return sorted(rng.choice(users, size=config.max_users, replace=False).tolist())


def tasks_for(split: Split, config: BenchConfig) -> list[Task]:
    """Cold-item and warm: one task of known users; cold-user: one task per ``k``."""
    ks = config.k_values if split.protocol == "cold-user" else (None,)
    tasks = []
    for k in ks:
        task = build_queries(split, k=k)
        tasks.append(task.subset(_subsample(task.users, config)))
    return tasks


# ---- measuring ---------------------------------------------------------------------------
def rank(model: Recommender, task: Task, config: BenchConfig, label: str) -> list[list[str]]:
    """Top ``max(ks)`` ids per task user, in batches."""
    return rank_queries(
        model,
        task,
        max(config.ks),
        batch_size=config.batch_size,
        desc=label,
        show_progress=config.show_progress,
        leave=False,
    )


def latency_ms(model: Recommender, task: Task, config: BenchConfig) -> tuple[float, float]:
    """p50 and p99 of single-query recommend calls over the first ``latency_users`` users."""
    times = []
    for q in range(min(config.latency_users, len(task.users))):
        start = time.perf_counter()
        model.recommend(
            task.queries[q],
            max(config.ks),
            exclude=task.exclude[q],
            candidates=task.candidates,
            exclude_seen=False,
        )
        times.append(1000 * (time.perf_counter() - start))
    if not times:
        return (float("nan"), float("nan"))
    p50, p99 = np.percentile(times, [50, 99])
    return (float(p50), float(p99))


def fallback_users(model: Recommender, task: Task) -> int | None:
    """How many task queries the model answers with its popularity fallback (None: never)."""
    flags = [model.is_fallback(q) for q in task.queries]
    return None if None in flags else sum(map(bool, flags))


def blend_of(model: Recommender, task: Task, protocol: str) -> list[dict[str, Any]] | None:
    """A blending model's weights for the task's users, beside its validation (None: not a
    blend): the new items' weights on cold-item, the others' elsewhere."""
    return model.blend_report(task.queries, 0 if protocol == "cold-item" else 1)


def candidates_without_signal(model: Recommender, task: Task) -> int | None:
    """Candidate items the model has no signal for (no interaction, or no known word)."""
    has_signal = model.item_has_signal
    if has_signal is None:
        return None
    pool = task.candidates if task.candidates is not None else model.active_item_ids()
    rows = model.item_ids.rows(pool, skip_unknown=True)
    return int((~np.asarray(has_signal)[rows]).sum())


def quality(
    ranked: list[list[str]],
    task: Task,
    config: BenchConfig,
    percentiles: dict[str, float],
    interval_metrics: Sequence[str] = (),
) -> tuple[dict[str, float], tuple[float, float], dict[str, tuple[float, float]]]:
    """Mean ranking metrics, coverage and popularity percentile, the NDCG@20 interval, and the
    intervals of ``interval_metrics`` (those measured)."""
    per_user = evaluate_rankings(ranked, task.relevant, config.ks)
    metrics = {name: mean_metric(values) for name, values in per_user.items()}
    catalogue = len(task.candidates) if task.candidates is not None else len(percentiles)
    for k in config.ks:
        metrics[f"coverage@{k}"] = coverage_at_k(ranked, max(catalogue, 1), k)
        metrics[f"pop_percentile@{k}"] = mean_metric(
            popularity_percentile_at_k(ranked, percentiles, k)
        )

    def interval(values: np.ndarray) -> tuple[float, float]:
        return bootstrap_ci(values, n_resamples=config.bootstrap_resamples, seed=config.seed)

    headline = per_user.get(HEADLINE, next(iter(per_user.values())))
    intervals = {m: interval(per_user[m]) for m in interval_metrics if m in per_user}
    return metrics, interval(headline), intervals


def encode_throughput(encoder: Encoder, texts: Sequence[str]) -> float:
    """Item texts per second, uncached (a short warm-up batch first)."""
    encoder.encode(list(texts[:8]), kind="passage")
    start = time.perf_counter()
    encoder.encode(list(texts), kind="passage")
    return len(texts) / max(time.perf_counter() - start, 1e-9)


# ---- the run -----------------------------------------------------------------------------
class EncoderHolder:
    """Builds the encoder once, on first use (``spec`` on ``device`` and ``runtime``, as
    :func:`~coldbrew.text.factory.runtime_encoder` builds every command's), and measures its
    throughput once."""

    def __init__(
        self,
        spec: str,
        texts: Sequence[str],
        device: str = "cpu",
        runtime: str = DEFAULT_RUNTIME,
    ) -> None:
        self.spec = spec
        self.device = device
        self.runtime = runtime
        self.texts = texts
        self._encoder: Encoder | None = None
        self.texts_per_s: float | None = None

    def get(self) -> Encoder:
        if self._encoder is None:
            self._encoder = runtime_encoder(self.spec, runtime=self.runtime, device=self.device)
            self.texts_per_s = encode_throughput(self._encoder, self.texts)
        return self._encoder


@dataclass
class ProtocolRun:
    """One protocol's split, its training part, its test tasks and the popularity percentiles
    of the items in that training part: what every model of the protocol is fitted and
    measured on."""

    split: Split
    train: Dataset
    tasks: list[Task]
    percentiles: dict[str, float]


Work = Sequence[tuple[str, ProtocolRun]]
"""(model name, protocol) pairs, in report order."""
Fits = Callable[[Dataset, Work, BenchConfig], list[list[ResultRow]]]
"""Fits and measures every pair of the work; one list of rows per pair, in the same order."""


def item_texts(dataset: Dataset, head: int | None = None) -> list[str]:
    """The catalogue's item texts as the models render them (of the first ``head`` items)."""
    template = ItemTemplate(dataset.spec.item_text, dataset.spec.item_attributes)
    items = dataset.items if head is None else dataset.items.head(head)
    return template.render_frame(items)


def prepare_protocol(
    dataset: Dataset, protocol: str, config: BenchConfig, out: Path | None
) -> ProtocolRun:
    """The split (saved under ``out/splits``, reused when it matches), its tasks and the
    popularity percentiles."""
    split_dir = out / "splits" / f"{protocol}-seed{config.seed}" if out else None
    split = load_or_make_split(dataset, protocol, config, split_dir)
    train = split.train_dataset(dataset)
    counts = train.positives()[ITEM_ID].astype(str).value_counts()
    percentiles = popularity_percentiles(
        {i: float(counts.get(i, 0)) for i in dataset.items[ITEM_ID].astype(str)}
    )
    return ProtocolRun(split, train, tasks_for(split, config), percentiles)


def run_benchmark(
    dataset: Dataset,
    config: BenchConfig,
    out_dir: str | Path | None = None,
    *,
    fits: Fits | None = None,
) -> DatasetRun:
    """Every model in ``config`` on every protocol; splits saved under ``out_dir/splits``.

    ``fits``: who fits and measures the models (default: this process, one after another;
    :func:`coldbrew.cluster.bench.ray_fits` runs them as Ray tasks)."""
    out = Path(out_dir) if out_dir is not None else None
    run = DatasetRun()
    work: list[tuple[str, ProtocolRun]] = []
    for protocol in config.protocols:
        prepared = prepare_protocol(dataset, protocol, config, out)
        info = prepared.split.info.items()
        run.splits[protocol] = {k: v for k, v in info if k not in ("cold_val_items", "fingerprint")}
        work.extend((name, prepared) for name in config.models)
    for rows in (fits or local_fits)(dataset, work, config):
        run.rows.extend(rows)
    return run


def local_fits(dataset: Dataset, work: Work, config: BenchConfig) -> list[list[ResultRow]]:
    """The work fitted and measured here, one model after another, with one shared encoder."""
    holder = EncoderHolder(config.encoder, item_texts(dataset, 256), config.device, config.runtime)
    ctx = ModelContext(holder.get, config.cache_dir, config.seed)
    pairs = tqdm(work, desc=dataset.name, disable=not config.show_progress)
    return [fit_and_measure(name, ctx, holder, prepared, config) for name, prepared in pairs]


def fit_and_measure(
    name: str,
    ctx: ModelContext,
    holder: EncoderHolder,
    prepared: ProtocolRun,
    config: BenchConfig,
) -> list[ResultRow]:
    """One model fitted on one protocol's training part, ranked for its tasks, measured."""
    train, split, tasks = prepared.train, prepared.split, prepared.tasks
    rows = []
    with PeakMemory() as memory:
        model = make_model(name, ctx)
        start = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - start
        measured = []
        for task in tasks:
            label = f"{name} k={task.k}" if task.k is not None else name
            ranked = rank(model, task, config, label)
            measured.append((task, ranked, latency_ms(model, task, config)))
    uses_encoder = bool(model.encoders())
    for task, ranked, (p50, p99) in measured:
        wanted = INTERVALS.get(split.protocol, ())
        metrics, ci, intervals = quality(ranked, task, config, prepared.percentiles, wanted)
        rows.append(
            ResultRow(
                dataset=train.name,
                protocol=split.protocol,
                k=task.k,
                seed=config.seed,
                model=name,
                params=model.get_params(),
                metrics=metrics,
                ndcg20_ci95=ci,
                users=len(task.users),
                left_out_users=task.left_out,
                fallback_users=fallback_users(model, task),
                candidates=len(task.candidates)
                if task.candidates is not None
                else len(model.active_item_ids()),
                candidates_without_signal=candidates_without_signal(model, task),
                fit_seconds=fit_seconds,
                encode_texts_per_s=holder.texts_per_s if uses_encoder else None,
                latency_ms_p50=p50,
                latency_ms_p99=p99,
                peak_rss_mb=memory.peak_mb,
                date=now(),
                intervals=intervals,
                blend=blend_of(model, task, split.protocol),
            )
        )
    return rows
