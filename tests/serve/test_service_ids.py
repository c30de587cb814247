"""The id policy (issue 28, finding 8): ids are compared in Unicode NFC; bidi controls and
zero-width characters are refused with a 422 naming the field, in bodies and in paths alike;
emoji stay allowed."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE, counts

BIDI = [
    "\u061c",
    "\u200e",
    "\u200f",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
INVISIBLE = [pytest.param(c, id=f"U+{ord(c):04X}") for c in BIDI + ZERO_WIDTH]


@pytest.mark.parametrize("char", INVISIBLE)
def test_invisible_characters_are_refused_in_body_ids(module_client: TestClient, char: str) -> None:
    before = counts(module_client)
    for path, body, field in (
        ("/items", {"id": f"lamp{char}1", "title": "Lamp"}, "id"),
        ("/users/batch", {"users": [{"id": "ok"}, {"id": f"{char}ana"}]}, "users.1.id"),
        ("/feedback", {"user_id": "gamer", "item_id": f"mouse{char}", "event": "like"}, "item_id"),
        ("/recommend", {"text": "tent", "liked": [f"tent{char}"]}, "liked.0"),
    ):
        response = module_client.post(path, json=body, headers=WRITE)
        assert response.status_code == 422, (path, response.text)
        fields = [e["field"] for e in response.json()["errors"]]
        assert fields == [field] and "zero-width" in response.json()["detail"]
    assert counts(module_client) == before


@pytest.mark.parametrize("char", INVISIBLE)
def test_invisible_characters_are_refused_in_path_ids(module_client: TestClient, char: str) -> None:
    for method, path, field in (
        ("GET", f"/items/tent{quote(char)}", "item_id"),
        ("GET", f"/users/{quote(char)}hiker", "user_id"),
        ("DELETE", f"/users/hiker{quote(char)}", "user_id"),
    ):
        response = module_client.request(method, path, headers=WRITE)
        assert response.status_code == 422, (path, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field]
    assert module_client.get("/users/hiker", headers=WRITE).status_code == 200


def test_ids_are_compared_in_nfc(module_client: TestClient) -> None:
    composed, decomposed = "caf\u00e9-nfc", "cafe\u0301-nfc"
    assert unicodedata.normalize("NFC", decomposed) == composed != decomposed
    try:
        sent = {"id": decomposed, "title": "Corner cafe"}
        assert module_client.post("/items", json=sent, headers=WRITE).status_code == 200
        again = {"items": [{"id": composed, "title": "Corner café"}]}
        assert module_client.post("/items/batch", json=again, headers=WRITE).status_code == 200
        for spelled in (composed, decomposed):  # either form names the one stored item
            found = module_client.get(f"/items/{quote(spelled)}")
            assert found.status_code == 200 and found.json()["id"] == composed
            assert found.json()["title"] == "Corner café"
        # an interaction must name a stored item: the decomposed spelling does
        jose = "/users/" + quote("jos\u00e9-nfc")
        click = {"user_id": "jose\u0301-nfc", "item_id": decomposed, "event": "like"}
        assert module_client.post("/feedback", json=click, headers=WRITE).status_code == 200
        user = module_client.get(jose, headers=WRITE)
        assert user.status_code == 200 and user.json()["interactions"] == 1
    finally:
        module_client.delete("/users/" + quote("jos\u00e9-nfc"), headers=WRITE)
        module_client.delete(f"/items/{quote(decomposed)}", headers=WRITE)
    assert module_client.get(f"/items/{quote(composed)}").status_code == 404


def test_an_id_too_long_once_normalised_is_refused(module_client: TestClient) -> None:
    qa = "\u0958"  # a composition exclusion: NFC spells it with two characters
    assert len(unicodedata.normalize("NFC", qa * 101)) == 202
    response = module_client.post("/items", json={"id": qa * 101, "title": "t"}, headers=WRITE)
    assert response.status_code == 422 and "in Unicode NFC" in response.text


def test_emoji_ids_are_allowed(module_client: TestClient) -> None:
    pizza = "\U0001f355-\U0001f1ee\U0001f1f9"  # pizza and a flag (two regional indicators)
    try:
        item = {"id": pizza, "title": "Margherita"}
        assert module_client.post("/items", json=item, headers=WRITE).status_code == 200
        assert module_client.get(f"/items/{quote(pizza)}").json()["id"] == pizza
    finally:
        module_client.delete(f"/items/{quote(pizza)}", headers=WRITE)
