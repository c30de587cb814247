"""The diversity and novelty controls over HTTP (issue 26): diversity lowers the list's
intra-list similarity, novelty its popularity, 0 changes nothing, bad values are 422."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from servicekit import load_catalogue

from coldbrew.eval.metrics import intra_list_similarity

GAMING = {"text": "gaming keyboard and gaming mouse", "k": 4, "explain": False}
HIKING = {"text": "hiking boots and keyboard", "k": 3, "explain": False}


@pytest.fixture
def client(module_client: TestClient) -> TestClient:
    """Every test here only reads: one client per module and database."""
    return module_client


def _ids(client: TestClient, body: dict[str, Any]) -> list[str]:
    response = client.post("/recommend", json=body)
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def _similarity(client: TestClient, ids: list[str]) -> float:
    index = client.app.state.engine.index  # type: ignore[attr-defined]
    return intra_list_similarity(index.row_vectors(index.ids.rows(ids)))


def _popularity(client: TestClient, ids: list[str]) -> float:
    users_of = client.app.state.engine.users_of  # type: ignore[attr-defined]
    return float(np.mean([len(users_of.get(i, ())) for i in ids]))


def test_diversity_one_lowers_intra_list_similarity(client: TestClient) -> None:
    plain = _ids(client, GAMING)
    diverse = _ids(client, {**GAMING, "diversity": 1.0})
    assert len(diverse) == len(plain) == 4
    assert diverse[0] == plain[0]
    assert _similarity(client, diverse) < _similarity(client, plain) - 0.05


def test_diversity_works_on_the_candidates_of_a_large_catalogue(
    open_client: Callable[..., TestClient],
) -> None:
    large = open_client(score_all_below=0)  # every catalogue is "large": candidates only
    load_catalogue(large)
    plain = _ids(large, GAMING)
    diverse = _ids(large, {**GAMING, "diversity": 1.0})
    assert _similarity(large, diverse) < _similarity(large, plain) - 0.05


def test_novelty_lowers_the_lists_popularity(client: TestClient) -> None:
    plain = _ids(client, HIKING)
    novel = _ids(client, {**HIKING, "novelty": 3.0})
    assert _popularity(client, plain) > 0  # boots and keyboard have interactions
    assert _popularity(client, novel) < _popularity(client, plain)


def test_controls_at_zero_change_nothing(client: TestClient) -> None:
    body = {**GAMING, "k": 8}
    plain = client.post("/recommend", json=body).json()["items"]
    off = client.post("/recommend", json={**body, "diversity": 0.0, "novelty": 0}).json()["items"]
    assert [(i["item_id"], i["score"]) for i in off] == [(i["item_id"], i["score"]) for i in plain]


def test_controls_on_an_empty_answer_give_an_empty_answer(client: TestClient) -> None:
    body = {**GAMING, "filters": {"category": ["no-such-category"]}, "diversity": 1, "novelty": 1}
    assert _ids(client, body) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("diversity", 1.5), ("diversity", -0.1), ("diversity", "0.5"), ("novelty", -1.0)],
)
def test_bad_controls_are_422_naming_the_field(
    client: TestClient, field: str, value: object
) -> None:
    response = client.post("/recommend", json={**GAMING, field: value})
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in [e["field"] for e in body["errors"]], body


def test_openapi_shows_the_controls_with_their_bounds(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["RecommendIn"]
    diversity = schema["properties"]["diversity"]
    assert (diversity["minimum"], diversity["maximum"]) == (0.0, 1.0)
    assert schema["properties"]["novelty"]["minimum"] == 0.0
