"""``coldbrew bench --ray``: the benchmark's model fits as Ray tasks.

The catalogue's item texts are encoded once on the cluster (Ray Data, through the embedding cache
when there is one); each (model, protocol) pair is then one Ray task that fits the model on the
protocol's training part and measures it exactly as :func:`coldbrew.bench.runner.local_fits`
does, with the same seeds. A task reads item vectors from that table and encodes only user texts
with its own copy of the encoder, built once per worker process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from coldbrew.bench.runner import (
    BenchConfig,
    EncoderHolder,
    Fits,
    ProtocolRun,
    ResultRow,
    Work,
    fit_and_measure,
    item_texts,
)
from coldbrew.cluster import WorkerPlan, require_ray, worker_plan
from coldbrew.cluster.encode import RayEncoder
from coldbrew.data.schema import Dataset
from coldbrew.models.recipes import ModelContext, make_model
from coldbrew.text.cache import EmbeddingCache
from coldbrew.text.encoder import Encoder, HashingEncoder
from coldbrew.text.factory import runtime_encoder
from coldbrew.text.memo import MemoEncoder

_HOLDERS: dict[str, EncoderHolder] = {}
"""This worker process's encoders, by spec and throughput sample: built by the first task that
needs one."""


def uses_encoder(names: Sequence[str], seed: int) -> bool:
    """Whether building any of the named models asks for the language model."""
    asked: list[str] = []

    def probe() -> Encoder:
        asked.append("encoder")
        return HashingEncoder()

    for name in names:
        make_model(name, ModelContext(probe, None, seed))
    return bool(asked)


def item_vectors(dataset: Dataset, config: BenchConfig, plan: WorkerPlan) -> dict[str, np.ndarray]:
    """Every item text of the catalogue with its vector, encoded on the cluster (and cached in
    ``config.cache_dir`` like the plain path caches them)."""
    texts = list(dict.fromkeys(item_texts(dataset)))
    local = runtime_encoder(config.encoder, runtime=config.runtime)  # the workers' runtime
    encoder = RayEncoder(local, plan=plan, min_texts=0, runtime=config.runtime)
    if config.cache_dir:
        vectors = EmbeddingCache(config.cache_dir).encode(encoder, texts, kind="passage")
    else:
        vectors = encoder.encode(texts, kind="passage")
    return dict(zip(texts, vectors))


def fit_task(
    name: str,
    prepared: ProtocolRun,
    table: dict[str, np.ndarray],
    config: BenchConfig,
    sample: list[str],
    threads: int,
) -> list[ResultRow]:
    """One pair of the work, in a Ray worker (the body of the remote task)."""
    import torch

    torch.set_num_threads(threads)
    key = f"{config.encoder}|{config.runtime}|{hash(tuple(sample))}"
    holder = _HOLDERS.setdefault(key, EncoderHolder(config.encoder, sample, runtime=config.runtime))
    memo: list[Encoder] = []

    def encoder() -> Encoder:
        if not memo:
            memo.append(MemoEncoder(holder.get(), table.get))
        return memo[0]

    return fit_and_measure(name, ModelContext(encoder, None, config.seed), holder, prepared, config)


def ray_fits(plan: WorkerPlan | None = None) -> Fits:
    """A :data:`~coldbrew.bench.runner.Fits` that runs every pair as a Ray task of
    ``plan.cpus_per_worker`` CPUs (as many at once as the cluster has room for)."""

    def fits(dataset: Dataset, work: Work, config: BenchConfig) -> list[list[ResultRow]]:
        ray = require_ray()
        chosen = plan or worker_plan()
        names = list(dict.fromkeys(name for name, _ in work))
        table = item_vectors(dataset, config, chosen) if uses_encoder(names, config.seed) else {}
        quiet = dataclasses.replace(config, show_progress=False, cache_dir=None)
        shared = (ray.put(table), ray.put(quiet), item_texts(dataset, 256))
        task = ray.remote(fit_task).options(num_cpus=chosen.cpus_per_worker)
        refs: dict[int, object] = {}
        pending = []
        for name, prepared in work:
            ref = refs.setdefault(id(prepared), ray.put(prepared))
            pending.append(task.remote(name, ref, *shared, chosen.cpus_per_worker))
        results: list[list[ResultRow]] = ray.get(pending)
        return results

    return fits
