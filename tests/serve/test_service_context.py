"""Context on requests and events over HTTP (issue 26), on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE, counts

CONTEXT = {"time": "2011-06-04T09:30:00", "location": "France", "mood": "festive"}


def test_recommend_takes_a_context(module_client: TestClient) -> None:
    answer = module_client.post("/recommend", json={"text": "tent", "context": CONTEXT})
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"]
    alone = module_client.post("/recommend", json={"context": {"time": 1307179800}})
    assert alone.status_code == 200, alone.text  # a context alone describes a new user


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"time": "yesterday"}, "context.time"),
        ({"device": ["a"]}, "context"),
        ({"location": "x" * 201}, "context.location"),
        ({f"k{n}": n for n in range(21)}, "context"),
    ],
)
def test_a_bad_context_is_422_naming_the_field(
    module_client: TestClient, context: dict[str, Any], message: str
) -> None:
    event = {"user_id": "gamer", "item_id": "mouse", "context": context}
    for path, body in (
        ("/recommend", {"text": "tent", "context": context}),
        ("/interactions", event),
        ("/feedback", {**event, "event": "like"}),
    ):
        before = counts(module_client)
        response = module_client.post(path, json=body, headers=WRITE)
        assert response.status_code == 422, response.text
        assert message in response.text and "context" in response.json()["detail"]
        assert counts(module_client) == before
