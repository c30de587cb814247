"""/recommend can give each item's relevance: its score's percentile among the catalogue's."""

from __future__ import annotations

from fastapi.testclient import TestClient
from servicekit import CATALOGUE


def test_relevance_is_given_on_request_and_ranks_like_the_scores(client: TestClient) -> None:
    body = {"text": "a tent for camping trips", "k": 4, "filters": {"category": ["outdoor"]}}
    plain = client.post("/recommend", json=body).json()
    assert all(item["relevance"] is None for item in plain["items"])
    asked = client.post("/recommend", json={**body, "relevance": True}).json()["items"]
    assert [i["item_id"] for i in asked] == [i["item_id"] for i in plain["items"]]
    assert asked[0]["item_id"] == "tent" and asked[0]["relevance"] == 100.0
    everything = client.post(
        "/recommend", json={"text": "a tent for camping trips", "k": 20, "relevance": True}
    ).json()["items"]
    assert len(everything) == len(CATALOGUE)
    shares = [i["relevance"] for i in everything]
    assert shares == sorted(shares, reverse=True) and 0.0 <= shares[-1] < 50.0  # ties: half
