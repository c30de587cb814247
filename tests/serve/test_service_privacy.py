"""A stored user stays private (issue 13, finding 1): recommending by ``user_id`` needs a key,
unknown and forbidden ids look the same without one, and explanations quote a stored profile
only to a write key; anonymous text/attribute/liked queries stay open and quote only what they
sent."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient
from servicekit import WRITE, load_catalogue

from coldbrew.config.settings import Settings

READER = {"X-API-Key": "reader-key-1-8c3f"}
ALICE = {
    "id": "alice",
    "text": "diabetes and pregnant, looking for camping gear",
    "attributes": {"religion": "muslim", "age": "25-34"},
}


def _with_alice(open_client: Callable[..., TestClient]) -> TestClient:
    client = open_client(read_key_hashes=Settings.keys("reader-key-1-8c3f"))
    load_catalogue(client)
    assert client.post("/users", json=ALICE, headers=WRITE).status_code == 200
    like = {"user_id": "alice", "item_id": "boots", "event": "like"}
    assert client.post("/feedback", json=like, headers=WRITE).status_code == 200
    return client


def test_recommending_for_a_stored_user_needs_a_key(open_client: Callable[..., TestClient]) -> None:
    client = open_client()
    load_catalogue(client)
    assert client.post("/users", json=ALICE, headers=WRITE).status_code == 200
    known = client.post("/recommend", json={"user_id": "alice"})
    unknown = client.post("/recommend", json={"user_id": "nobody-at-all"})
    assert known.status_code == unknown.status_code == 401
    assert known.content == unknown.content  # nothing tells which ids exist
    bad = {"X-API-Key": "guess"}
    forbidden = client.post("/recommend", json={"user_id": "alice"}, headers=bad)
    missing = client.post("/recommend", json={"user_id": "nobody-at-all"}, headers=bad)
    assert forbidden.status_code == missing.status_code == 403
    assert forbidden.content == missing.content
    assert "diabetes" not in known.text + forbidden.text
    # open reads that name no stored user need no key
    for body in ({"text": "tent"}, {"attributes": {"age": "25-34"}}, {"liked": ["tent"]}):
        assert client.post("/recommend", json=body).status_code == 200


def test_a_read_key_gets_answers_but_never_the_stored_profile(
    open_client: Callable[..., TestClient],
) -> None:
    client = _with_alice(open_client)
    response = client.post("/recommend", json={"user_id": "alice", "k": 5}, headers=READER)
    assert response.status_code == 200
    said = json.dumps([r["explanation"] for r in response.json()["items"]]).lower()
    for private in ("diabetes", "pregnant", "muslim", "religion", "camping", "boots"):
        assert private not in said, private
    assert all(not r["explanation"]["liked"] for r in response.json()["items"])
    # what the caller sends itself may be quoted back to it
    mixed = {"user_id": "alice", "text": "a tent for hiking", "k": 3}
    items = client.post("/recommend", json=mixed, headers=READER).json()["items"]
    words = {w["word"] for r in items for w in r["explanation"]["words"]}
    assert words and words <= {"tent", "hiking"}


def test_meta_names_user_attributes_but_never_their_values(
    open_client: Callable[..., TestClient],
) -> None:
    """Keyless, and with a read key, ``/meta`` lists which attributes users have, never what a
    user stored under them (issue 28: it listed zip codes and a ``diagnosis`` to anyone)."""
    patient = {"id": "bo", "attributes": {"diagnosis": "asthma", "zip": "90210", "age": "25-34"}}
    open_reads = open_client()  # the default: reads, /meta included, need no key
    load_catalogue(open_reads)
    keyed_reads = _with_alice(open_client)  # COLDBREW_READ_KEYS set: keyless /meta is 401
    assert keyed_reads.get("/meta").status_code == 401
    for client, who in ((open_reads, {}), (keyed_reads, READER), (keyed_reads, WRITE)):
        for user in (ALICE, patient):
            assert client.post("/users", json=user, headers=WRITE).status_code == 200
        meta = client.get("/meta", headers=who)
        assert meta.status_code == 200
        # the most common first (age: four users), then by name
        names = ["age", "diagnosis", "occupation", "religion", "zip"]
        assert meta.json()["user_attributes"] == names
        for value in ("asthma", "90210", "25-34", "muslim", "diabetes"):
            assert value not in meta.text, value
        # item-side values are the catalogue's, public like the items themselves
        assert "outdoor" in meta.json()["item_attributes"]["category"]


def test_a_write_key_gets_the_profile_quoted(open_client: Callable[..., TestClient]) -> None:
    client = _with_alice(open_client)
    response = client.post("/recommend", json={"user_id": "alice", "k": 9}, headers=WRITE)
    said = json.dumps(response.json()["items"])
    # the reasons quote her stored words where they decided (her text reads "camping gear")
    assert "Matches your words “camping”" in json.loads(said)[0]["explanation"]["text"]
    assert any(r["explanation"]["liked"] for r in response.json()["items"])


def test_anonymous_explanations_quote_only_what_was_sent_and_briefly(client: TestClient) -> None:
    attributes = {f"a{n}": "x" * 150 for n in range(20)}
    response = client.post("/recommend", json={"attributes": attributes, "k": 100})
    assert response.status_code == 200
    items = response.json()["items"]
    assert all(len(r["explanation"]["text"]) < 400 for r in items)
    assert len(response.content) < 100_000  # k=100 answered 97 MB with a 0.96 MB list before
