"""Explanations quote only words the item really contains, in English and in Chinese."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from servicekit import CATALOGUE

from coldbrew.live.explain import keywords, occurring

QUERIES = [
    "I need a light jacket for a spring outing",
    "a lantern for my camping tent and hiking boots",
    "wireless gaming mouse",
    "something to cook steak at home",
    "我需要一件适合春游的外套",
    "想找一本好看的科幻小说",
    "简单的家常菜",
]
QUOTED = re.compile(r"“([^”]+)”")


def _text(item: dict[str, object]) -> str:
    attributes = item["attributes"]
    assert isinstance(attributes, dict)
    return " ".join([str(item["title"]), str(item["description"]), *map(str, attributes.values())])


def test_chinese_is_cut_into_words_not_character_pairs() -> None:
    words = keywords("我需要一件适合春游的外套")
    assert {"春游", "外套"} <= set(words)
    assert "件适" not in words and "适合" not in words  # a non-word and a stop word
    assert keywords("想找一本好看的科幻小说") == ["科幻小说"]
    assert occurring(["外套", "jacket", "春游"], "Spring jacket 春季外套") == ["外套", "jacket"]


@pytest.mark.parametrize("text", QUERIES)
def test_no_explanation_claims_a_word_the_item_lacks(client: TestClient, text: str) -> None:
    response = client.post("/recommend", json={"text": text, "k": len(CATALOGUE)})
    assert response.status_code == 200, response.text
    claimed = 0
    for item in response.json()["items"]:
        explanation = item["explanation"]
        if explanation["text"].startswith("Matches your words"):
            words = QUOTED.findall(explanation["text"])
            assert words and occurring(words, _text(item)) == words, (item["item_id"], words)
            assert [w["word"] for w in explanation["words"]] == words
            claimed += 1
        else:  # no word quoted without being in the item
            assert not explanation["words"]
    if text.startswith(("a lantern", "wireless", "想找")):
        assert claimed  # and where the words are there, they are said
