"""Rebuilding an encoder from its config on a runtime: what a refit and a Ray worker do."""

from __future__ import annotations

import numpy as np
import pytest

from coldbrew.text.centred import ScriptCentredEncoder
from coldbrew.text.encoder import HashingEncoder
from coldbrew.text.factory import OnFirstUse, load_encoder, make_encoder, rebuilt_on_use
from coldbrew.text.onnx import OnnxEncoder
from coldbrew.text.sbert import SentenceTransformerEncoder

TEXTS = ["a light jacket for a spring outing", "一件适合春天出游的轻便夹克", "mechanical keyboard"]


def test_encoders_pytorch_does_not_run_are_rebuilt_as_they_are_on_every_runtime() -> None:
    config = HashingEncoder(32).config()
    for runtime in ("auto", "torch", "onnx-int8"):
        assert isinstance(load_encoder(config, runtime=runtime), HashingEncoder)
        rebuilt = rebuilt_on_use(config, runtime=runtime)
        assert isinstance(rebuilt, HashingEncoder) and rebuilt.dim == 32


def test_on_torch_the_model_is_rebuilt_as_pytorch_and_loads_nothing() -> None:
    config = make_encoder("default").config()
    for rebuilt in (load_encoder(config), rebuilt_on_use(config, runtime="torch")):
        assert isinstance(rebuilt, SentenceTransformerEncoder) and rebuilt._st is None


def test_a_rebuilt_on_use_encoder_loads_nothing_until_it_encodes() -> None:
    """Its name and config are known at once; ``made`` stays empty (no runtime, no model)."""
    config = make_encoder("default").config()
    rebuilt = rebuilt_on_use(config, runtime="auto", threads=1)
    assert isinstance(rebuilt, OnFirstUse) and rebuilt.made is None
    assert (rebuilt.name, rebuilt.config()) == ("st:all-MiniLM-L6-v2", config)
    assert rebuilt.made is None


@pytest.mark.slow
def test_the_model_is_rebuilt_on_the_runtime_asked_with_pytorchs_vectors() -> None:
    """A float onnx encoder's config is PyTorch's: given the runtime, the rebuilt encoder runs
    on onnxruntime (a script-centred model's base too), on the threads asked, and its vectors
    are PyTorch's within 2e-5 (the same name, the same stored vectors)."""
    pytorch = make_encoder("default")
    config = pytorch.config()
    rebuilt = load_encoder(config, runtime="auto", threads=1)
    assert isinstance(rebuilt, OnnxEncoder) and rebuilt.threads == 1
    assert (rebuilt.name, rebuilt.config()) == (pytorch.name, config)
    expected = pytorch.encode(TEXTS)
    np.testing.assert_allclose(rebuilt.encode(TEXTS), expected, atol=2e-5)
    on_use = rebuilt_on_use(config, runtime="auto", threads=1)
    np.testing.assert_allclose(on_use.encode(TEXTS), expected, atol=2e-5)
    assert isinstance(on_use, OnFirstUse) and isinstance(on_use.made, OnnxEncoder)
    means = np.zeros((2, pytorch.dim), dtype=np.float32)
    centred = load_encoder(ScriptCentredEncoder(pytorch, means).config(), runtime="auto")
    assert isinstance(centred, ScriptCentredEncoder) and isinstance(centred.base, OnnxEncoder)
