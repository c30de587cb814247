"""The onnxruntime form of a sentence-transformers encoder gives PyTorch's vectors, faster."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from coldbrew.text.encoder import HashingEncoder
from coldbrew.text.onnx import OnnxEncoder, OnnxUnsupported, _layout, _pool, onnx_or_torch
from coldbrew.text.sbert import SentenceTransformerEncoder

TEXTS = [
    "a light jacket for a spring outing",
    "一件适合春天出游的轻便夹克",
    "",
    "keyboard",
    "a much longer description of a mechanical keyboard with hot-swappable switches " * 30,
]


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_onnx_vectors_match_pytorch_in_order_across_batches(
    minilm: SentenceTransformerEncoder, kind: str
) -> None:
    onnx = OnnxEncoder(minilm).load()
    # batch_size 2 mixes lengths across batches (long texts are sorted first internally)
    mine = onnx.encode(TEXTS, kind=kind, batch_size=2)  # type: ignore[arg-type]
    theirs = minilm.encode(TEXTS, kind=kind)  # type: ignore[arg-type]
    assert mine.shape == theirs.shape and mine.dtype == np.float32
    np.testing.assert_allclose(mine, theirs, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(mine, axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_onnx_keeps_the_models_name_and_config_so_stored_vectors_are_reused(
    minilm: SentenceTransformerEncoder,
) -> None:
    onnx = onnx_or_torch(minilm, "onnx")
    assert isinstance(onnx, OnnxEncoder)
    assert (onnx.name, onnx.config(), onnx.dim) == (minilm.name, minilm.config(), minilm.dim)
    assert onnx.encode([], kind="query").shape == (0, minilm.dim)


def test_runtime_choice_for_encoders_without_an_onnx_form() -> None:
    hashing = HashingEncoder(32)
    assert onnx_or_torch(hashing, "auto") is hashing
    assert onnx_or_torch(hashing, "torch") is hashing
    with pytest.raises(OnnxUnsupported, match="no onnx runtime"):
        onnx_or_torch(hashing, "onnx")
    with pytest.raises(ValueError, match="unknown runtime 'tpu'"):
        onnx_or_torch(hashing, "tpu")


def test_without_onnxruntime_auto_falls_back_to_pytorch_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    base = SentenceTransformerEncoder("not-loaded")  # the model is never touched
    with caplog.at_level(logging.WARNING, logger="coldbrew.text.onnx"):
        assert onnx_or_torch(base, "auto") is base
    assert "onnxruntime is not installed" in caplog.text
    with pytest.raises(OnnxUnsupported, match="pip install coldbrew"):
        onnx_or_torch(base, "onnx")


def _named(name: str) -> object:
    return type(name, (), {})()


def test_only_the_transformer_pooling_normalize_layout_is_exported() -> None:
    with pytest.raises(OnnxUnsupported, match="Dense"):
        _layout([_named("Transformer"), _named("Pooling"), _named("Dense")])

    class Pooling:
        def __init__(self, mode: str) -> None:
            self.mode = mode

        def get_config_dict(self) -> dict[str, str]:
            return {"pooling_mode": self.mode}

    assert _layout([_named("Transformer"), Pooling("cls")]) == "cls"
    with pytest.raises(OnnxUnsupported, match="weightedmean"):
        _layout([_named("Transformer"), Pooling("weightedmean")])


def test_pooling_respects_the_attention_mask() -> None:
    tokens = np.array([[[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(_pool(tokens, mask, "mean"), [[2.0, -1.0]])
    np.testing.assert_allclose(_pool(tokens, mask, "max"), [[3.0, 2.0]])
    np.testing.assert_allclose(_pool(tokens, mask, "cls"), [[1.0, 2.0]])


@pytest.mark.slow
def test_a_model_without_a_normalize_layer_still_gives_unit_vectors(
    minilm: SentenceTransformerEncoder,
) -> None:
    from sentence_transformers import SentenceTransformer

    unnormalized = SentenceTransformerEncoder()
    unnormalized._st = SentenceTransformer(modules=[minilm.st_model[0], minilm.st_model[1]])
    raw = unnormalized.st_model.encode(TEXTS[:2], normalize_embeddings=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)  # pooling alone
    onnx = OnnxEncoder(unnormalized).load()
    mine = onnx.encode(TEXTS, kind="passage", batch_size=2)
    np.testing.assert_allclose(np.linalg.norm(mine, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(mine, unnormalized.encode(TEXTS, kind="passage"), atol=2e-5)
