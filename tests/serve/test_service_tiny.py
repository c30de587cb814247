"""A new shop through the service: a catalogue with no interactions, or one or two, is answered
before and after its first refit (issues 24 and 27), in English and Chinese."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from servicekit import CATALOGUE, INTERACTIONS, USERS, WRITE


@pytest.mark.parametrize("n_events", [0, 1, 2])
def test_a_new_shop_is_answered_before_and_after_its_first_refit(
    open_client: Callable[..., TestClient], n_events: int
) -> None:
    client = open_client(refit_every=0, refit_minutes=0)
    for path, key, rows in (
        ("/items/batch", "items", CATALOGUE),
        ("/users/batch", "users", USERS),
        ("/interactions/batch", "interactions", INTERACTIONS[:n_events]),
    ):
        if rows:
            response = client.post(path, json={key: rows}, headers=WRITE)
            assert response.status_code == 200, response.text
    engine = client.app.state.engine  # type: ignore[attr-defined]
    for refitted in (False, True):
        if refitted:
            outcome = engine.refit_now()  # what the background refit does, here and now
            assert "error" not in outcome
        for text, expected in (("ultralight camping tent", "tent"), ("科幻小说", "scifi")):
            response = client.post("/recommend", json={"text": text, "k": 3})
            assert response.status_code == 200, response.text
            items = [r["item_id"] for r in response.json()["items"]]
            assert len(set(items)) == 3 and items[0] == expected, (refitted, text)
    # two users on two items are enough for the service to train its hybrid
    assert engine.info.kind == ("hybrid" if n_events == 2 else "zeroshot")
