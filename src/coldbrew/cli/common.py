"""Arguments shared by several commands: which dataset, which encoder, which model."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from coldbrew.data import load_dataset
from coldbrew.data.cleaning import OnBadRows
from coldbrew.data.schema import Dataset
from coldbrew.models.base import Recommender
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.factory import make_encoder
from coldbrew.text.language import AUTO, catalogue_language, encoder_for

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
        help="benchmark dataset: ml-100k, ml-1m, ml-latest-small or citeulike-a",
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
    if args.data is not None:
        dataset = load_dataset(args.data, on_bad_rows=policy)
    else:
        dataset = load_dataset(args.dataset, data_root=args.data_root, on_bad_rows=policy)
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
        "name, or a local model directory (default: %(default)s)",
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


def zero_shot_from_args(
    args: argparse.Namespace, *, show_progress: bool = True
) -> ZeroShotRecommender:
    return ZeroShotRecommender(
        make_encoder(args.encoder), cache_dir=args.cache_dir or None, show_progress=show_progress
    )


def model_from_args(args: argparse.Namespace, dataset: Dataset) -> Recommender:
    """The saved model in ``--model`` if given, else a zero-shot model fit on ``dataset``."""
    if getattr(args, "model", None):
        return Recommender.load(args.model)
    route_encoder(args, dataset)
    return zero_shot_from_args(args).fit(dataset)
