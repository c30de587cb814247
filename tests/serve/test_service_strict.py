"""Strict request bodies (issue 13, findings 3, 4 and 6): wrong types, NaN/Infinity, NUL and lone
surrogates, oversized lists and maps are 422 naming the field, on SQLite and on PostgreSQL, and
write nothing."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE, counts

from coldbrew.serve.schemas import ID_PATTERN


@pytest.fixture
def client(module_client: TestClient) -> TestClient:
    """Every test here leaves the database as it found it: one client per module and database."""
    return module_client


def _post_raw(client: TestClient, path: str, raw: str, **headers: str) -> Any:
    """Post a body as written (json.dumps would refuse NaN; the service must refuse it)."""
    return client.post(
        path, content=raw.encode(), headers={"content-type": "application/json", **headers}
    )


def _assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in [e["field"] for e in body["errors"]], body
    assert field in body["detail"]


@pytest.mark.parametrize("k", ['"10"', "true", "10.0", "null"])
def test_numbers_are_not_coerced(client: TestClient, k: str) -> None:
    _assert_refused(_post_raw(client, "/recommend", f'{{"text": "tent", "k": {k}}}'), "k")


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        (
            "/interactions",
            '{"user_id": "gamer", "item_id": "mouse", "timestamp": NaN}',
            "timestamp",
        ),
        (
            "/interactions",
            '{"user_id": "gamer", "item_id": "mouse", "timestamp": Infinity}',
            "timestamp",
        ),
        (
            "/interactions",
            '{"user_id": "gamer", "item_id": "mouse", "timestamp": -Infinity}',
            "timestamp",
        ),
        ("/interactions", '{"user_id": "gamer", "item_id": "mouse", "value": NaN}', "value"),
        ("/items", '{"id": "n", "title": "t", "attributes": {"price": NaN}}', "attributes.price"),
        ("/users", '{"id": "n", "attributes": {"score": -Infinity}}', "attributes.score"),
        ("/items", '{"id": "n\\u0000", "title": "t"}', "id"),
        ("/items", '{"id": "n", "title": "a\\u0000b"}', "title"),
        ("/users", '{"id": "n", "text": "nul \\u0000 here"}', "text"),
        ("/users", '{"id": "n", "attributes": {"a\\u0000": "x"}}', "attributes.a\x00.(key)"),
        ("/users", '{"id": "n", "attributes": {"a": ["ok", "b\\u0000"]}}', "attributes.a.1"),
        ("/users", '{"id": "n", "text": "lone \\ud800 surrogate"}', "text"),
        (
            "/items/batch",
            '{"items": [{"id": "a", "title": "t"}, {"id": "b", "title": "\\u0000"}]}',
            "items.1.title",
        ),
    ],
)
def test_unrepresentable_values_are_422_naming_the_field(
    client: TestClient, path: str, raw: str, field: str
) -> None:
    before = counts(client)
    _assert_refused(_post_raw(client, path, raw, **WRITE), field)
    assert counts(client) == before


def test_queries_refuse_nan_nul_and_infinity_too(client: TestClient) -> None:
    cases = [
        ('{"text": "a\\u0000b"}', "text"),
        ('{"text": "tent", "filters": {"category": [NaN]}}', "filters.category.0"),
        ('{"attributes": {"age": Infinity}}', "attributes.age"),
        ('{"liked": ["tent\\u0000"]}', "liked.0"),
    ]
    for raw, field in cases:
        _assert_refused(_post_raw(client, "/recommend", raw), field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "x", "attributes": {"tags": ["t"] * 21}}, "attributes.tags"),
        ({"text": "x", "attributes": {"tags": ["x" * 101]}}, "attributes.tags.0"),
        ({"text": "x", "attributes": {"bio": "x" * 201}}, "attributes.bio"),
        ({"text": "x", "attributes": {f"a{n}": "x" for n in range(21)}}, "attributes"),
        ({"text": "x", "attributes": {"k" * 65: "x"}}, f"attributes.{'k' * 65}.(key)"),
        ({"text": "x", "filters": {"category": ["books"] * 101}}, "filters.category"),
        ({"text": "x", "filters": {f"f{n}": ["a"] for n in range(21)}}, "filters"),
        ({"liked": ["tent"] * 201}, "liked"),
    ],
)
def test_every_list_and_map_of_a_query_is_capped(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    _assert_refused(client.post("/recommend", json=body), field)


def test_a_megabyte_attribute_list_is_refused_at_once(client: TestClient) -> None:
    """The issue's attack: a 0.96 MB list was encoded for 2.8 s and echoed in every answer."""
    huge = {"text": "tent", "k": 100, "attributes": {"tags": ["x" * 90] * 10_000}}
    response = client.post("/recommend", json=huge)
    _assert_refused(response, "attributes.tags")
    assert len(response.content) < 2000


def test_items_and_users_attributes_are_capped(client: TestClient) -> None:
    item = {"id": "big", "title": "t", "attributes": {"tags": ["t"] * 51}}
    _assert_refused(client.post("/items", json=item, headers=WRITE), "attributes.tags")
    user = {"id": "big", "attributes": {f"a{n}": 1 for n in range(51)}}
    _assert_refused(client.post("/users", json=user, headers=WRITE), "attributes")


def test_invalid_json_is_not_reported_as_a_batch_row(client: TestClient) -> None:
    response = _post_raw(client, "/items/batch", '{"items": [{"id": "a", "title": "t"},', **WRITE)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["index"] == -1 and error["field"] == "body"
    assert "not valid JSON" in error["message"]


def test_batch_rows_keep_their_index(client: TestClient) -> None:
    rows = [{"id": "a", "title": "t"}, {"id": "b", "title": "t"}, {"id": "c", "title": ""}]
    response = client.post("/items/batch", json={"items": rows}, headers=WRITE)
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(2, "items.2.title")]


ODD_BUT_VALID = ["a.b", "ünïcode", "日本語", "50%off", "x:y@z+1", "...a", "a~b=c"]


@pytest.mark.parametrize("ident", ODD_BUT_VALID)
def test_ids_the_schema_allows_work_end_to_end(client: TestClient, ident: str) -> None:
    assert re.fullmatch(ID_PATTERN, ident)
    item = {"id": ident, "title": "Odd id lamp"}
    assert client.post("/items", json=item, headers=WRITE).status_code == 200
    assert client.get(f"/items/{quote(ident, safe='')}").json()["id"] == ident
    assert client.get(f"/items/{quote(ident, safe='')}/similar").status_code == 200
    assert client.delete(f"/items/{quote(ident, safe='')}", headers=WRITE).status_code == 200


@pytest.mark.parametrize(
    "ident", [".", "..", "a b", "a/b", "a?b", "a#b", "a\\b", "a\u3000b", "\x1c"]
)
def test_ids_the_schema_refuses_are_422(client: TestClient, ident: str) -> None:
    assert not re.fullmatch(ID_PATTERN, ident)
    _assert_refused(client.post("/items", json={"id": ident, "title": "t"}, headers=WRITE), "id")


def test_the_published_schema_carries_the_caps(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    recommend = schemas["RecommendIn"]["properties"]
    assert recommend["attributes"]["maxProperties"] == 20
    assert recommend["k"]["type"] == "integer"
    assert json.dumps(schemas["ItemIn"]).count(ID_PATTERN.replace("\\", "\\\\")) >= 1


def test_a_body_that_is_not_utf8_is_422_not_400(client: TestClient) -> None:
    response = client.post(
        "/items", content=b"\x02)Oz\xff\xfe", headers={**WRITE, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
