"""Ray for the batch work: one local Ray instance (2 CPUs) shared by every test of the module.

Each path is checked against the single-process one: the Ray-encoded catalogue, a benchmark run
with ``--ray`` (its results.json metrics), and a refit run as a Ray task by the service's engine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from coldbrew.cli.main import main  # noqa: E402
from coldbrew.cluster import WorkerPlan, connect, worker_plan  # noqa: E402
from coldbrew.cluster.encode import RayEncoder, encode_on_ray  # noqa: E402
from coldbrew.models.base import Recommender, UserQuery  # noqa: E402
from coldbrew.text.cache import EmbeddingCache  # noqa: E402
from coldbrew.text.encoder import HashingEncoder  # noqa: E402
from synthetic import write_synthetic  # noqa: E402

TIMING = {"fit_seconds", "latency_ms_p50", "latency_ms_p99", "peak_rss_mb", "date"}
TIMING |= {"encode_texts_per_s"}


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    connect("local", num_cpus=2)
    yield
    ray.shutdown()


def catalogue(n: int) -> list[str]:
    rng = np.random.default_rng(1)
    words = ["trail", "tent", "kitchen", "pan", "jacket", "coffee", "boots", "lamp", "desk"]
    return [" ".join(rng.choice(words, size=int(rng.integers(2, 9)))) + f" {i}" for i in range(n)]


def test_the_plan_follows_the_clusters_cpus() -> None:
    assert worker_plan() == WorkerPlan(2, 1)
    assert worker_plan(cpus_per_worker=2) == WorkerPlan(1, 2)
    with pytest.raises(ValueError, match="cpus_per_worker"):
        worker_plan(cpus_per_worker=0)


def test_a_ray_encoded_catalogue_equals_the_plain_one_in_order(tmp_path: Path) -> None:
    """Through the embedding cache, in 8 blocks over 2 workers: the same vectors in the same
    order, and the same cache file as the plain path writes."""
    encoder = HashingEncoder(64)
    texts = catalogue(900)
    plain = encoder.encode(texts)
    on_ray = RayEncoder(encoder, plan=WorkerPlan(2, 1), min_texts=0, block_rows=128)
    ray_cache, plain_cache = EmbeddingCache(tmp_path / "ray"), EmbeddingCache(tmp_path / "plain")
    vectors = ray_cache.encode(on_ray, texts)
    assert vectors.dtype == np.float32 and np.array_equal(vectors, plain)
    plain_cache.encode(encoder, texts)
    with (
        np.load(tmp_path / "ray" / "hashing-64.passage.npz") as a,
        np.load(tmp_path / "plain" / "hashing-64.passage.npz") as b,
    ):
        assert a["keys"].tolist() == b["keys"].tolist()
        assert np.array_equal(a["vectors"], b["vectors"])


def test_short_calls_stay_in_this_process() -> None:
    encoder = RayEncoder(HashingEncoder(32), min_texts=10)
    assert encoder.name == "hashing-32" and encoder.config() == {"type": "hashing", "dim": 32}
    words = ["a user's words"]
    assert np.array_equal(encoder.encode(words), HashingEncoder(32).encode(words))
    assert encode_on_ray(encoder.config(), [], dim=32).shape == (0, 32)


def _bench(data: Path, out: Path, *extra: str) -> list[dict[str, Any]]:
    args = ["bench", "--data", str(data), "--encoder", "hashing", "--cache-dir", ""]
    args += ["--models", "popularity,tfidf,als,zeroshot", "--protocol", "cold-user"]
    args += ["--k-values", "0,1"]
    args += ["--latency-users", "2", "--no-progress", "--out", str(out), *extra]
    assert main(args) == 0
    rows: list[dict[str, Any]] = json.loads((out / "results.json").read_text())["results"]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_a_bench_run_on_ray_equals_the_plain_one(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "synthetic", n_users=40, n_items=60)
    plain = _bench(data, tmp_path / "plain")
    on_ray = _bench(data, tmp_path / "ray", "--ray", "auto")
    assert len(plain) == 4 * 2  # four models, k=0 and k=1
    assert on_ray == plain
    meta = json.loads((tmp_path / "ray" / "results.json").read_text())["meta"]
    assert meta["ray"] == {"address": "auto", "workers": 2, "cpus_per_worker": 1}


def test_encode_command_fills_the_cache_on_ray(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "synthetic", n_users=10, n_items=300)
    for name, extra in (("plain", []), ("ray", ["--ray", "auto", "--ray-workers", "2"])):
        args = ["encode", "--data", str(data), "--encoder", "hashing:64"]
        args += ["--cache-dir", str(tmp_path / name), "--out", str(tmp_path / f"{name}.npz")]
        assert main(args + extra) == 0
    with np.load(tmp_path / "plain.npz") as a, np.load(tmp_path / "ray.npz") as b:
        assert a["ids"].tolist() == b["ids"].tolist() and len(a["ids"]) == 300
        assert np.array_equal(a["vectors"], b["vectors"])
    assert (tmp_path / "ray" / "hashing-64.passage.npz").exists()


def test_a_refit_run_as_a_ray_task_is_served_and_loads(tmp_path: Path) -> None:
    from coldbrew.live.engine import Engine, Serving
    from coldbrew.live.refit import RefitJob, run_refit
    from coldbrew.store import Interaction, Item, Store

    serving = Serving(
        models_dir=str(tmp_path / "models"), refit_every=0, refit_minutes=0, ray="auto"
    )
    engine = Engine(Store(str(tmp_path / "s.sqlite")), HashingEncoder(64), serving=serving).load()
    engine.upsert_items([Item(f"i{n}", f"{catalogue(40)[n]}") for n in range(40)])
    rng = np.random.default_rng(5)
    likes = [(u, int(i)) for u in range(20) for i in rng.choice(40, 6, replace=False)]
    engine.add_interactions(
        [Interaction(f"e{t}", f"u{u}", f"i{i}", "like", float(t)) for t, (u, i) in enumerate(likes)]
    )
    assert engine.refit(forced=True) == "started"
    deadline = time.monotonic() + 120
    while engine.refitter is not None and engine.refitter.running and time.monotonic() < deadline:
        time.sleep(0.5)
    stats = engine.refitter.stats if engine.refitter else None
    assert stats is not None and stats.counts["swapped"] == 1, stats
    version = stats.last["version"]
    assert engine.info.version == version and engine.info.kind == "hybrid"
    from_ray = Recommender.load(engine.versions.path(version), encoder=HashingEncoder(64))
    # the same job in this process: the same model, recommendation for recommendation
    job = RefitJob(engine.store.url, str(engine.versions.root), engine.encoder.config(), None, True)
    here = run_refit(job, HashingEncoder(64))
    local = Recommender.load(engine.versions.path(here["version"]), encoder=HashingEncoder(64))
    for user in ("u0", "u7"):
        expected = local.recommend(UserQuery(user_id=user), 5)
        assert from_ray.recommend(UserQuery(user_id=user), 5).ids == expected.ids
    engine.close()
    engine.store.close()


def test_the_service_encodes_bulk_items_on_ray(tmp_path: Path) -> None:
    """With ``ray`` set, a catalogue batch and the vectors missing at start-up are encoded by
    the cluster's workers, into the same stored vectors as the plain engine's; a short call (a
    user's words) stays in the process."""
    from coldbrew.cluster.encode import RayEncoder
    from coldbrew.live.answers import Query
    from coldbrew.live.engine import RAY_BULK_TEXTS, Engine, Serving
    from coldbrew.live.records import item_text
    from coldbrew.store import Item, Store

    items = [Item(f"i{n}", text) for n, text in enumerate(catalogue(RAY_BULK_TEXTS + 44))]
    texts = [item_text(i) for i in items]
    engines = {}
    for name, ray_address in (("plain", None), ("ray", "auto")):
        serving = Serving(model="zeroshot", ray=ray_address)
        store = Store(str(tmp_path / f"{name}.sqlite"))
        engines[name] = Engine(store, HashingEncoder(64), serving=serving).load()
        engines[name].upsert_items(items)
    on_ray = engines["ray"].encoder.inner
    assert isinstance(on_ray, RayEncoder) and on_ray.bulk_calls == 1
    plain = engines["plain"].store.vectors("item", "hashing-64")
    stored = engines["ray"].store.vectors("item", "hashing-64")
    assert stored.keys() == plain.keys() and all(np.array_equal(stored[k], plain[k]) for k in plain)
    engines["ray"].recommend(Query(UserQuery(text="a tent for the trail"), k=3))
    assert on_ray.bulk_calls == 1  # the query's words were encoded here
    for engine in engines.values():
        engine.close()
    # another encoder over the same database: every item lacks its vectors, made at start-up
    serving = Serving(model="zeroshot", ray="auto")
    restarted = Engine(engines["ray"].store, HashingEncoder(32), serving=serving).load()
    assert restarted.encoder.inner.bulk_calls == 1
    fresh = restarted.store.vectors("item", "hashing-32")
    expected = HashingEncoder(32).encode(texts)
    assert np.array_equal(np.stack([fresh[i.item_id] for i in items]), expected)
    restarted.close()
    for engine in engines.values():
        engine.store.close()


@pytest.mark.slow
def test_minilm_on_ray_gives_the_plain_vectors() -> None:
    """The bundled language model: a worker pads its own batches, so the vectors may differ
    from the plain ones in the last float bits, never by more than 1e-6."""
    from coldbrew.text.factory import make_encoder

    encoder = make_encoder("default")
    texts = catalogue(300)
    on_ray = RayEncoder(encoder, plan=WorkerPlan(1, 1), min_texts=0, block_rows=100)
    assert np.abs(on_ray.encode(texts) - encoder.encode(texts)).max() <= 1e-6


@pytest.mark.slow
def test_an_encoding_actor_runs_the_model_on_the_runtime_it_is_given() -> None:
    """A float onnx encoder's config is PyTorch's: an actor built with runtime ``auto`` runs
    onnxruntime (one thread per CPU it has), with the vectors of the same encoder here."""
    from coldbrew.cluster.encode import EncodeBatches
    from coldbrew.text.factory import runtime_encoder

    local = runtime_encoder("default", runtime="auto")  # exported here first, if need be
    config, texts = local.config(), catalogue(20)

    @ray.remote(num_cpus=1)
    def actor_encoder(runtime: str) -> tuple[str, int | None, np.ndarray]:
        actor = EncodeBatches(config, 1, runtime)
        batch = {"row": np.arange(len(texts)), "text": np.asarray(texts)}
        vectors = actor(batch, "passage", 64)["vector"]
        return type(actor.encoder).__name__, getattr(actor.encoder, "threads", None), vectors

    name, threads, vectors = ray.get(actor_encoder.remote("auto"))
    assert (name, threads) == ("OnnxEncoder", 1)
    assert np.abs(vectors - local.encode(texts)).max() <= 1e-6


def test_the_service_reads_coldbrew_ray() -> None:
    from coldbrew.config.settings import Settings

    assert Settings.from_env({}).serving.ray is None  # the default: a child process
    assert Settings.from_env({"COLDBREW_RAY": "auto"}).serving.ray == "auto"
    assert (
        Settings.from_env({"COLDBREW_RAY": ""}, ray="10.0.0.5:6379").serving.ray == "10.0.0.5:6379"
    )
