"""Encode throughput of the bundled encoders on real catalogue text (items per second).

    .venv/bin/python benchmarks/encode_throughput.py --dataset ml-100k --n 1000

Encodes the first ``n`` item texts of a dataset, rendered by the same template the zero-shot
model uses, once to warm up on a small batch and then timed. No cache is involved.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from coldbrew.data import load_dataset
from coldbrew.text.factory import make_encoder
from coldbrew.text.templates import ItemTemplate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--n", type=int, default=1000, help="items to encode")
    parser.add_argument("--encoders", default="default,multilingual")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    data = load_dataset(args.dataset)
    template = ItemTemplate(data.spec.item_text, data.spec.item_attributes)
    texts = template.render_frame(data.items.head(args.n))
    mean_chars = sum(map(len, texts)) / len(texts)
    print(f"{args.dataset}: {len(texts)} item texts, mean {mean_chars:.0f} characters")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    for spec in args.encoders.split(","):
        encoder = make_encoder(spec)
        encoder.encode(texts[:8], kind="passage")  # load the model outside the timing
        start = time.perf_counter()
        encoder.encode(texts, kind="passage", batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        print(f"{encoder.name:40s} {len(texts) / seconds:8.1f} items/s  ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
