"""Where an encoder runs: PyTorch, float ONNX (:mod:`coldbrew.text.onnx`) or int8 ONNX
(:mod:`coldbrew.text.int8`), chosen by name. Above both, so neither imports the other's
caller.

Every command that encodes (``serve``, ``recommend``, ``eval``, ``bench``, ``encode``, ``demo``)
picks the runtime here, by :func:`onnx_or_torch`, from the same setting
(:data:`RUNTIME_VARIABLE`, else :data:`DEFAULT_RUNTIME`; ``--runtime`` wins): what the benchmark
measures is what the service and the command line run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from coldbrew.text.device import AUTO, cpu_only, resolve_device
from coldbrew.text.encoder import Encoder
from coldbrew.text.int8 import int8_or_float
from coldbrew.text.onnx import float_runtime
from coldbrew.text.sbert import SentenceTransformerEncoder

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnx", "onnx-int8", "torch")
"""The runtimes by name: ``auto`` tries float ONNX, then PyTorch (PyTorch at once for a model
on a GPU); ``onnx`` or fail; ``onnx-int8`` tries int8, then as ``auto``; ``torch`` as it is."""
DEFAULT_RUNTIME = "auto"
RUNTIME_VARIABLE = "COLDBREW_ENCODER_RUNTIME"
"""The environment variable that names the runtime of every command (``--runtime`` wins)."""
RUNTIME_HELP = (
    "where the encoder runs: onnxruntime (the same vectors, about twice as fast per "
    "request), onnxruntime with int8 weights (vectors within cosine 0.99 of them, stored "
    "apart; float onnx when the int8 check fails), PyTorch, or auto (onnx when installed "
    "and the model allows)"
)


def default_runtime(env: Mapping[str, str] | None = None) -> str:
    """The runtime :data:`RUNTIME_VARIABLE` names in ``env`` (default: ``os.environ``), else
    :data:`DEFAULT_RUNTIME`; a name not in :data:`RUNTIMES` is a ValueError naming the
    variable."""
    value = (os.environ if env is None else env).get(RUNTIME_VARIABLE, DEFAULT_RUNTIME)
    if value not in RUNTIMES:
        raise ValueError(f"{RUNTIME_VARIABLE}={value!r}: choose one of {', '.join(RUNTIMES)}")
    return value


def runtime_or_default(runtime: str | None) -> str:
    """``runtime`` as given, else :func:`default_runtime`'s (what every command's ``--runtime``
    and every rebuilt encoder take when none is named)."""
    return default_runtime() if runtime is None else runtime


def onnx_or_torch(
    encoder: Encoder, runtime: str = DEFAULT_RUNTIME, *, threads: int | None = None
) -> Encoder:
    """``encoder`` on the asked runtime (one of :data:`RUNTIMES`): ``torch`` as is; ``onnx`` or
    raise; ``auto`` tries onnx; ``onnx-int8`` tries the int8 model, then falls back as ``auto``
    does (:func:`coldbrew.text.int8.int8_or_float`). ``threads``: onnxruntime's (default: the
    CPUs this process may run on; a refit or a Ray worker gives its own share).

    Only sentence-transformers encoders have an onnx form; others are returned unchanged.
    onnxruntime runs on the CPU here: ``auto`` keeps PyTorch for a model whose device is an
    accelerator (named, or found by ``auto``: :func:`on_accelerator`), and ``onnx`` or
    ``onnx-int8`` refuse a named one (ValueError).
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    if runtime == "torch":
        return encoder
    if isinstance(encoder, SentenceTransformerEncoder):
        if runtime == "auto" and on_accelerator(encoder):
            log.info("encoding with PyTorch on %s (onnxruntime runs on the CPU)", encoder.device)
            return encoder
        cpu_only(encoder.device, f"the {runtime} runtime (onnxruntime) runs on the CPU only here")
    if runtime == "onnx-int8":
        return int8_or_float(encoder, threads=threads)
    return float_runtime(encoder, runtime, threads=threads)


def on_accelerator(encoder: SentenceTransformerEncoder) -> bool:
    """Whether ``encoder``'s PyTorch device is not the CPU: a named one (``cuda``, ``mps``) is
    taken as it is (checked when the model loads); ``auto`` asks PyTorch what is present (so
    only then is torch imported)."""
    if encoder.device == "cpu":
        return False
    return encoder.device != AUTO or resolve_device(AUTO) != "cpu"
