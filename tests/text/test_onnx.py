"""The onnxruntime form of a sentence-transformers encoder gives PyTorch's vectors, faster."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coldbrew.text.encoder import HashingEncoder
from coldbrew.text.onnx import (
    OnnxEncoder,
    OnnxUnsupported,
    _check_tokens,
    _fast_tokenizer,
    _layout,
    _pool,
    exported,
    padded_features,
    token_features,
)
from coldbrew.text.runtime import onnx_or_torch
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


# Character and token counts disagree: 10 CJK characters are 12 tokens, 50 characters of
# repeated English 8; the batches are cut by tokens, so these are sorted differently.
UNEVEN = ["keyboard " * 5 + "mouse", "一二三四五六七八九十", "ok", "a b c d e f", "keyboard"]


@pytest.mark.slow
def test_batches_cut_by_token_count_put_every_vector_back_in_its_place(
    minilm: SentenceTransformerEncoder,
) -> None:
    onnx = OnnxEncoder(minilm).load()
    tokens = [len(e.ids) for e in onnx._tokenizer.encode_batch(UNEVEN)]
    by_tokens = np.argsort([-t for t in tokens], kind="stable")
    assert list(by_tokens) != list(np.argsort([-len(t) for t in UNEVEN], kind="stable"))
    theirs = minilm.encode(UNEVEN, kind="passage")
    for batch_size in (1, 2, 64):
        mine = onnx.encode(UNEVEN, kind="passage", batch_size=batch_size)
        np.testing.assert_allclose(mine, theirs, atol=2e-5)


@pytest.mark.slow
def test_padding_each_batch_by_hand_gives_the_padding_tokenizers_arrays(
    minilm: SentenceTransformerEncoder,
) -> None:
    padding = _fast_tokenizer(minilm.st_model)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    theirs = token_features(padding, [*UNEVEN, *TEXTS], names)
    padding.no_padding()
    mine = padded_features(padding.encode_batch([*UNEVEN, *TEXTS]), names, pad_id=0)
    assert mine["input_ids"].shape[1] > min(len(e.ids) for e in padding.encode_batch(UNEVEN))
    for name in names:
        np.testing.assert_array_equal(mine[name], theirs[name])


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


_FRESH_PROCESS = """
import json, sys
import numpy as np
from coldbrew.text.onnx import OnnxEncoder
from coldbrew.text.runtime import onnx_or_torch
from coldbrew.text.sbert import SentenceTransformerEncoder
encoder = onnx_or_torch(SentenceTransformerEncoder(), "onnx")
np.save(sys.argv[1], encoder.encode(json.loads(sys.argv[2]), kind="query"))
heavy = [m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules]
print(json.dumps({"onnx": isinstance(encoder, OnnxEncoder), "dim": encoder.dim, "heavy": heavy}))
"""


@pytest.mark.slow
def test_a_serving_process_runs_onnx_without_ever_importing_pytorch(
    minilm: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    """The export runs in a child process once; the encoding process imports neither PyTorch
    nor sentence-transformers (~700 MB), and a second start reuses the export as it is."""
    env = {**os.environ, "COLDBREW_CACHE": str(tmp_path / "cache")}

    def fresh(name: str) -> tuple[dict[str, object], np.ndarray]:
        out = tmp_path / f"{name}.npy"
        command = [sys.executable, "-c", _FRESH_PROCESS, str(out), json.dumps(TEXTS)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1]), np.load(out)

    first, vectors = fresh("first")
    assert first == {"onnx": True, "dim": minilm.dim, "heavy": []}
    np.testing.assert_allclose(vectors, minilm.encode(TEXTS, kind="query"), atol=2e-5)
    (export,) = (tmp_path / "cache" / "onnx").iterdir()  # one export, no leftover work dir
    assert sorted(f.name for f in export.iterdir()) == ["meta.json", "model.onnx", "tokenizer.json"]
    stamps = {f.name: f.stat().st_mtime_ns for f in export.iterdir()}
    second, again = fresh("second")
    assert second == first
    np.testing.assert_array_equal(again, vectors)
    assert {f.name: f.stat().st_mtime_ns for f in export.iterdir()} == stamps  # reused


@pytest.mark.slow
def test_an_export_that_disagrees_with_pytorch_is_refused(
    minilm: SentenceTransformerEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = SentenceTransformerEncoder()  # not loaded in this process: the cached path
    good = exported(base, tmp_path)
    assert OnnxEncoder(base, cache_dir=tmp_path).load().dim == minilm.dim
    meta = json.loads((good / "meta.json").read_text())
    meta["probes"] = [list(reversed(v)) for v in meta["probes"]]  # as a wrong model would give
    (good / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(OnnxUnsupported, match="differ from PyTorch's"):
        OnnxEncoder(base, cache_dir=tmp_path).load()


@pytest.mark.slow
def test_a_tokenizer_that_cuts_differently_is_refused(minilm: SentenceTransformerEncoder) -> None:
    st = minilm.st_model
    tokenizer = _fast_tokenizer(st)
    _check_tokens(st, tokenizer, ["input_ids", "attention_mask"])  # the model's own: accepted
    tokenizer.enable_truncation(max_length=16)  # but the long probe is cut at 256 tokens
    with pytest.raises(OnnxUnsupported, match="other input_ids"):
        _check_tokens(st, tokenizer, ["input_ids", "attention_mask"])


@pytest.mark.slow
def test_a_model_that_does_not_load_says_why_once_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    # no network for the export child either, whatever the machine has
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    missing = SentenceTransformerEncoder(str(tmp_path / "no-such-model"))
    with pytest.raises(ValueError, match="cannot load") as raised:
        exported(missing, tmp_path / "cache")
    assert not isinstance(raised.value, OnnxUnsupported)  # not a reason to try PyTorch
    assert not any((tmp_path / "cache").iterdir())  # nothing half-written, nothing refused
    # auto does not fall back to PyTorch for a hub name that does not load: that would only
    # ask the hub all over again (a minute without network) and fail the same way
    monkeypatch.setenv("COLDBREW_CACHE", str(tmp_path / "auto"))
    with pytest.raises(ValueError, match="cannot load the encoder 'coldbrew-tests/"):
        onnx_or_torch(SentenceTransformerEncoder("coldbrew-tests/no-such-model"), "auto")


@pytest.mark.slow
def test_a_model_found_unsupported_is_remembered_and_not_exported_again(
    minilm: SentenceTransformerEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense

    dense = Dense(minilm.dim, 32)  # transformer -> pooling -> dense: no ONNX form here
    SentenceTransformer(modules=[minilm.st_model[0], minilm.st_model[1], dense]).save(
        str(tmp_path / "with-dense")
    )
    base = SentenceTransformerEncoder(str(tmp_path / "with-dense"))
    with pytest.raises(OnnxUnsupported, match="Dense"):
        exported(base, tmp_path / "cache")
    (marker,) = (tmp_path / "cache").glob("*.unsupported")
    assert "Dense" in marker.read_text()

    def no_child(*args: object, **kwargs: object) -> None:
        raise AssertionError("the export was tried again")

    monkeypatch.setattr(subprocess, "run", no_child)
    with pytest.raises(OnnxUnsupported, match="remembered in"):
        exported(base, tmp_path / "cache")
