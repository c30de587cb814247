"""``coldbrew encode``: encode a catalogue's item texts in bulk, here or on a Ray cluster.

The vectors go into the embedding cache (``--cache-dir``), where every later command that
encodes the same items with the same encoder (bench, eval, recommend) finds them, and, with
``--out``, into an ``.npz`` file of ``ids`` and ``vectors``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.cli.common import (
    add_dataset_args,
    add_encoder_args,
    add_ray_args,
    encoder_from_args,
    load_from_args,
    ray_plan_from_args,
    route_encoder,
)
from coldbrew.cli.device import add_device_arg, check_ray_device
from coldbrew.data.schema import ITEM_ID
from coldbrew.text.cache import EmbeddingCache, encode_texts
from coldbrew.text.templates import ItemTemplate


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "encode",
        help="encode a catalogue's item texts into the embedding cache (optionally on Ray)",
        description="Render every item as the models do, encode the texts the cache does not "
        "hold yet and store them there (and in --out). With --ray the texts are encoded by a "
        "pool of Ray workers (Ray Data map_batches), with the same vectors.",
    )
    add_dataset_args(parser)
    add_encoder_args(parser)
    add_device_arg(parser, "a sentence-transformers encoder")
    parser.add_argument(
        "--out", type=Path, help="also write the item ids and vectors to this .npz file"
    )
    add_ray_args(parser, "the encoding (Ray Data map_batches, one encoder per worker)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_ray_device(args)
    dataset = load_from_args(args)
    route_encoder(args, dataset)
    template = ItemTemplate(dataset.spec.item_text, dataset.spec.item_attributes)
    texts = template.render_frame(dataset.items)
    encoder = encoder_from_args(args)
    plan = ray_plan_from_args(args)
    if plan is not None:
        from coldbrew.cluster.encode import RayEncoder

        encoder = RayEncoder(encoder, plan=plan, min_texts=0, runtime=args.runtime)
    cache = EmbeddingCache(args.cache_dir) if args.cache_dir else None
    start = time.perf_counter()
    vectors = encode_texts(encoder, texts, kind="passage", cache=cache, show_progress=True)
    seconds = time.perf_counter() - start
    print(
        f"{len(texts)} item texts, {encoder.name}, {seconds:.1f}s "
        f"({len(texts) / max(seconds, 1e-9):.0f} texts/s, cached ones included)",
        file=sys.stderr,
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        ids = dataset.items[ITEM_ID].astype(str).to_numpy(dtype=str)
        np.savez(args.out, ids=ids, vectors=vectors)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
