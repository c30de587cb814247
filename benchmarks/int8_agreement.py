"""How close the int8 onnx runtime's vectors are to the float32 model's, on every item text.

    .venv/bin/python benchmarks/int8_agreement.py \
        --datasets ml-100k,ml-1m,ml-latest-small,citeulike-a,online-retail

For each dataset, every item's text as the bench renders it (:func:`coldbrew.bench.runner.
item_texts`) is encoded by MiniLM in onnxruntime twice, with float32 and with int8 weights
(:mod:`coldbrew.text.int8`), and the cosine of each pair is summarised: the minimum, the 1st
percentile and the mean (``--sample N``: of a seeded sample of N texts). The float32 onnx
vectors are PyTorch's within cosine 0.9999 (checked at every load).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from coldbrew.bench.runner import item_texts
from coldbrew.data import load_dataset
from coldbrew.text.int8 import Int8OnnxEncoder
from coldbrew.text.onnx import OnnxEncoder
from coldbrew.text.sbert import SentenceTransformerEncoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,online-retail")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sample", type=int, help="a seeded sample of this many texts each")
    args = parser.parse_args()
    base = SentenceTransformerEncoder()
    float32, int8 = OnnxEncoder(base).load(), Int8OnnxEncoder(base).load()
    print(f"{'dataset':16s} {'texts':>6s} {'min':>7s} {'p1':>7s} {'mean':>7s}")
    for name in args.datasets.split(","):
        texts = sorted(set(item_texts(load_dataset(name))))
        if args.sample and args.sample < len(texts):
            rows = np.random.default_rng(42).choice(len(texts), args.sample, replace=False)
            texts = [texts[i] for i in sorted(rows)]
        began = time.perf_counter()
        ours = int8.encode(texts, batch_size=args.batch_size)
        theirs = float32.encode(texts, batch_size=args.batch_size)
        cosines = np.sum(ours * theirs, axis=1)
        print(
            f"{name:16s} {len(texts):6d} {cosines.min():7.4f} "
            f"{np.percentile(cosines, 1):7.4f} {cosines.mean():7.4f}"
            f"  ({time.perf_counter() - began:.0f} s, load {os.getloadavg()[0]:.1f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
