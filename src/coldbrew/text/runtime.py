"""Where an encoder runs: PyTorch, float ONNX (:mod:`coldbrew.text.onnx`) or int8 ONNX
(:mod:`coldbrew.text.int8`), chosen by name. Above both, so neither imports the other's
caller."""

from __future__ import annotations

from coldbrew.text.encoder import Encoder
from coldbrew.text.int8 import int8_or_float
from coldbrew.text.onnx import float_runtime

RUNTIMES = ("auto", "onnx", "onnx-int8", "torch")
"""The runtimes by name: ``auto`` tries float ONNX, then PyTorch; ``onnx`` or fail;
``onnx-int8`` tries int8, then as ``auto``; ``torch`` as it is."""


def onnx_or_torch(encoder: Encoder, runtime: str = "auto") -> Encoder:
    """``encoder`` on the asked runtime (one of :data:`RUNTIMES`): ``torch`` as is; ``onnx`` or
    raise; ``auto`` tries onnx; ``onnx-int8`` tries the int8 model, then falls back as ``auto``
    does (:func:`coldbrew.text.int8.int8_or_float`).

    Only sentence-transformers encoders have an onnx form; others are returned unchanged.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    if runtime == "onnx-int8":
        return int8_or_float(encoder)
    return float_runtime(encoder, runtime)
