"""Encoding a catalogue with Ray Data: ``map_batches`` over a pool of encoder actors.

Each actor rebuilds the encoder from its config once (:func:`coldbrew.text.factory.load_encoder`),
on the runtime the caller encodes on (a float onnx encoder's config is PyTorch's: the runtime
travels beside it), with as many threads as it has CPUs, and encodes the blocks it is handed.
Rows come back tagged with their position, so the output is in input order whatever order the
blocks finish. :class:`RayEncoder` is an :class:`~coldbrew.text.encoder.Encoder` (same name, same
vectors), so the embedding cache, the models and the benchmark take it where they take the plain
encoder.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from coldbrew.cluster import WorkerPlan, connect, require_ray, worker_plan
from coldbrew.data.frames import pd
from coldbrew.text.encoder import Encoder, TextKind
from coldbrew.text.factory import load_encoder
from coldbrew.text.runtime import runtime_or_default

BLOCK_ROWS = 512
"""Texts per Ray Data block: the unit of work one actor takes at a time."""


class EncodeBatches:
    """The Ray Data callable class: one encoder per actor, built once on ``runtime`` (with
    ``threads`` threads, the actor's CPUs)."""

    def __init__(self, config: Mapping[str, Any], threads: int, runtime: str) -> None:
        self.encoder = load_encoder(config, runtime=runtime, threads=threads)
        if "torch" in sys.modules:  # a torch encoder: as many threads as this actor's CPUs
            sys.modules["torch"].set_num_threads(threads)

    def __call__(
        self, batch: dict[str, np.ndarray], kind: TextKind, batch_size: int
    ) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        vectors = self.encoder.encode(texts, kind=kind, batch_size=batch_size)
        return {"row": batch["row"], "vector": np.asarray(vectors, dtype=np.float32)}


def encode_on_ray(
    config: Mapping[str, Any],
    texts: Sequence[str],
    *,
    dim: int,
    kind: TextKind = "passage",
    batch_size: int = 64,
    plan: WorkerPlan | None = None,
    block_rows: int = BLOCK_ROWS,
    show_progress: bool = False,
    runtime: str | None = None,
) -> np.ndarray:
    """``texts`` encoded on the cluster by the encoder ``config`` describes, in input order.

    Parameters
    ----------
    config
        The encoder's :meth:`~coldbrew.text.encoder.Encoder.config`.
    runtime
        Where the workers run it (:func:`~coldbrew.text.runtime.onnx_or_torch`; ``None``:
        ``$COLDBREW_ENCODER_RUNTIME`` here, else auto).
    dim
        Its vector size (the shape of an empty answer).
    plan
        Workers and CPUs per worker (default: :func:`~coldbrew.cluster.worker_plan`).
    block_rows
        Texts per block; an actor encodes one block per call, ``batch_size`` texts at a time.
    """
    if block_rows < 1:
        raise ValueError(f"block_rows must be at least 1, got {block_rows}")
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    ray = require_ray()
    plan = plan or worker_plan()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = show_progress
    frame = pd.DataFrame({"row": np.arange(len(texts), dtype=np.int64), "text": list(texts)})
    blocks = [frame.iloc[s : s + block_rows] for s in range(0, len(frame), block_rows)]
    encoded = ray.data.from_pandas(blocks).map_batches(
        EncodeBatches,
        fn_constructor_kwargs={
            "config": dict(config),
            "threads": plan.cpus_per_worker,
            "runtime": runtime_or_default(runtime),
        },
        fn_kwargs={"kind": kind, "batch_size": batch_size},
        batch_size=block_rows,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan.workers),
        num_cpus=plan.cpus_per_worker,
    )
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
        out[batch["row"]] = batch["vector"]
    return out


class RayEncoder:
    """``local`` with its bulk calls (``min_texts`` texts or more) encoded on the Ray cluster.

    Same name, dimension and config as ``local``, so it shares its embedding cache entries and
    saved models record the plain encoder. Short calls (a user's words) stay in this process.

    Parameters
    ----------
    local
        The encoder to mirror; the workers rebuild it from ``local.config()`` on ``runtime``.
    plan
        Workers and CPUs per worker (default: from the cluster's CPUs, at the first bulk call).
    min_texts
        Calls with fewer texts run on ``local``.
    block_rows
        Texts per Ray Data block (see :func:`encode_on_ray`).
    address
        The cluster to join (:func:`~coldbrew.cluster.connect`) at the first bulk call; ``None``:
        this process has joined one already.
    runtime
        The one ``local`` runs on (:func:`~coldbrew.text.runtime.onnx_or_torch`; ``None``:
        ``$COLDBREW_ENCODER_RUNTIME``, else auto), on which the workers run it too.
    """

    def __init__(
        self,
        local: Encoder,
        *,
        plan: WorkerPlan | None = None,
        min_texts: int = 256,
        block_rows: int = BLOCK_ROWS,
        address: str | None = None,
        runtime: str | None = None,
    ) -> None:
        if min_texts < 0:
            raise ValueError(f"min_texts must be >= 0, got {min_texts}")
        self.local = local
        self.plan = plan
        self.min_texts = min_texts
        self.block_rows = block_rows
        self.address = address
        self.runtime = runtime_or_default(runtime)
        self.bulk_calls = 0
        """How many calls went to the cluster."""

    @property
    def name(self) -> str:
        return self.local.name

    @property
    def dim(self) -> int:
        return self.local.dim

    def config(self) -> dict[str, Any]:
        return self.local.config()

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        if len(texts) < self.min_texts:
            return self.local.encode(
                texts, kind=kind, batch_size=batch_size, show_progress=show_progress
            )
        if self.address is not None:
            connect(self.address)
        self.bulk_calls += 1
        return encode_on_ray(
            self.config(),
            texts,
            dim=self.dim,
            kind=kind,
            batch_size=batch_size,
            plan=self.plan,
            block_rows=self.block_rows,
            show_progress=show_progress,
            runtime=self.runtime,
        )
