"""One runtime for every command: the setting, the device rule and the shared embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coldbrew.text.cache import EmbeddingCache
from coldbrew.text.device import resolve_device
from coldbrew.text.encoder import HashingEncoder
from coldbrew.text.factory import runtime_encoder
from coldbrew.text.onnx import OnnxEncoder, OnnxUnsupported
from coldbrew.text.runtime import RUNTIME_VARIABLE, RUNTIMES, default_runtime
from coldbrew.text.sbert import SentenceTransformerEncoder

TITLES = ["WHITE HANGING HEART T-LIGHT HOLDER", "SET OF 3 CAKE TINS PANTRY DESIGN", "朱古力", ""]


def test_the_runtime_setting_is_the_variable_else_auto_and_a_bad_name_names_the_variable() -> None:
    assert default_runtime({}) == "auto"
    for name in RUNTIMES:
        assert default_runtime({RUNTIME_VARIABLE: name}) == name
    with pytest.raises(ValueError, match=rf"{RUNTIME_VARIABLE}='tpu': choose one of auto, onnx"):
        default_runtime({RUNTIME_VARIABLE: "tpu"})


def test_encoders_without_an_onnx_form_run_as_they_are_on_every_runtime_but_onnx() -> None:
    for runtime in ("auto", "torch", "onnx-int8"):
        encoder = runtime_encoder("hashing:32", runtime=runtime)
        assert isinstance(encoder, HashingEncoder) and encoder.dim == 32
    with pytest.raises(OnnxUnsupported, match="hashing-32 has no onnx runtime"):
        runtime_encoder("hashing:32", runtime="onnx")


def test_torch_is_the_pytorch_encoder_and_loads_nothing_yet() -> None:
    import coldbrew

    assert coldbrew.runtime_encoder is runtime_encoder  # the Python API's name for it
    encoder = runtime_encoder("default", runtime="torch")
    assert isinstance(encoder, SentenceTransformerEncoder)
    assert encoder.name == "st:all-MiniLM-L6-v2" and encoder._st is None


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_auto_keeps_pytorch_on_a_named_accelerator_and_onnx_refuses_it(device: str) -> None:
    encoder = runtime_encoder("default", runtime="auto", device=device)
    assert isinstance(encoder, SentenceTransformerEncoder) and encoder.device == device
    assert encoder._st is None  # not loaded: the device is checked when the model loads
    for runtime in ("onnx", "onnx-int8"):
        with pytest.raises(ValueError, match=rf"runs on the CPU only here: device '{device}'"):
            runtime_encoder("default", runtime=runtime, device=device)


@pytest.mark.slow
def test_auto_on_the_cpu_is_onnx_and_reuses_what_pytorch_cached(tmp_path: Path) -> None:
    """The float onnx encoder stores under PyTorch's name: a cache PyTorch filled is read back
    as it is (bit for bit, nothing encoded or written again), and a fresh encoding agrees.
    ``--device auto`` is onnx too where PyTorch finds no accelerator, PyTorch where it finds one."""
    torch_encoder = runtime_encoder("default", runtime="torch")
    on_gpu = resolve_device("auto") != "cpu"
    assert isinstance(
        runtime_encoder("default", device="auto"), type(torch_encoder) if on_gpu else OnnxEncoder
    )
    encoder = runtime_encoder("default")
    assert isinstance(encoder, OnnxEncoder)
    assert (encoder.name, encoder.config()) == (torch_encoder.name, torch_encoder.config())
    cache = EmbeddingCache(tmp_path)
    stored = cache.encode(torch_encoder, TITLES, kind="passage")
    files = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert len(files) == 2  # the vectors and their lock file
    again = cache.encode(encoder, TITLES, kind="passage")
    assert np.array_equal(again, stored)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == files
    np.testing.assert_allclose(encoder.encode(TITLES, kind="passage"), stored, atol=2e-5)
