"""The service trains and serves its own hybrid: refits, swaps, kills, restarts, forgetting.

One refit (a real child process) builds the module's served hybrid; tests that change it work on a
copy of its database and model directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE, make_settings

from coldbrew.live import worker
from coldbrew.live.judge import should_serve
from coldbrew.models.query import UserQuery
from coldbrew.serve import create_app
from coldbrew.text import HashingEncoder

TOPICS = {
    "hiking": "trail boots backpack hiking mountain",
    "gaming": "keyboard mouse console gaming controller",
    "cooking": "skillet knife recipe cooking kitchen",
    "reading": "novel poetry library reading book",
}
FORGET = "forget-me-7781"
SECRETS = ("insulin pump night shifts", "zip-02139-7781")
"""The forgotten user's own words and an attribute value only they hold."""


def catalogue() -> list[dict[str, Any]]:
    items = []
    for topic, words in TOPICS.items():
        vocab = words.split()
        for n in range(10):
            items.append(
                {
                    "id": f"{topic}-{n}",
                    "title": f"{vocab[n % 5].title()} number {n}",
                    "description": f"{vocab[(n + 1) % 5]} and {vocab[(n + 2) % 5]} for {topic}",
                    "attributes": {"category": topic},
                }
            )
    return items


def events() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Users and their positive events: each user likes 6 items of one topic, in time order."""
    rng = np.random.default_rng(7)
    users, out = [], []
    for u in range(32):
        topic = list(TOPICS)[u % 4]
        user_id = FORGET if u == 5 else f"u{u}"
        users.append({"id": user_id, "attributes": {"age": ["18-24", "25-34"][u % 2]}})
        if user_id == FORGET:
            users[-1]["text"] = SECRETS[0]
            users[-1]["attributes"]["zip"] = SECRETS[1]
        for n in rng.permutation(10)[:6]:
            out.append({"user_id": user_id, "item_id": f"{topic}-{n}", "event": "like"})
    for t, event in enumerate(out):
        event["timestamp"] = float(t)
        event["id"] = f"e{t}"
    return users, out


def load_shop(client: TestClient) -> None:
    """Post the catalogue, the users and their events."""
    users, evs = events()
    for path, key, rows in (
        ("/items/batch", "items", catalogue()),
        ("/users/batch", "users", users),
        ("/interactions/batch", "interactions", evs),
    ):
        assert client.post(path, json={key: rows}, headers=WRITE).status_code == 200


def open_app(db: Path, **kwargs: Any) -> TestClient:
    kwargs.setdefault("models_dir", str(db.parent / "models"))
    settings = make_settings(
        str(db), refit_every=0, refit_minutes=0, refit_min_interactions=20, **kwargs
    )
    client = TestClient(create_app(settings, encoder=HashingEncoder(256)))
    client.__enter__()
    return client


def wait_for_refit(client: TestClient, seconds: float = 180, refits: int = 1) -> dict[str, Any]:
    """The refit status once ``refits`` refits have ended and none runs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get("/admin/refit", headers=WRITE).json()
        if not status["running"] and status["refits"] >= refits:
            return status
        time.sleep(0.2)
    raise AssertionError("the refit did not finish in time")


def recommend(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/recommend", json=body, headers=WRITE)  # stored users need a key
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with the catalogue, users and events, and a served hybrid (v000001)."""
    root = tmp_path_factory.mktemp("served")
    client = open_app(root / "shop.sqlite")
    load_shop(client)
    assert recommend(client, user_id="u1", k=3)["model_version"] == "v000000"
    started = client.post("/admin/refit", headers=WRITE)
    assert started.status_code == 202 and started.json()["status"] == "started"
    status = wait_for_refit(client)
    assert status["outcomes"] == {"swapped": 1, "kept": 0, "failed": 0}, status
    client.__exit__(None, None, None)
    return root


@pytest.fixture
def served(trained: Path, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Open the trained service on a private copy of its database and model versions."""
    for name in ("shop.sqlite", "models"):
        source = trained / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, tmp_path / name)
    opened: list[TestClient] = []

    def _open(**kwargs: Any) -> TestClient:
        client = open_app(tmp_path / "shop.sqlite", **kwargs)
        opened.append(client)
        return client

    yield _open
    for client in opened:
        client.__exit__(None, None, None)


def test_the_refit_hybrid_is_served_and_survives_a_restart(
    served: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = served()
    answer = recommend(client, user_id="u1", k=5, explain=False)
    assert (answer["model_version"], answer["model_kind"]) == ("v000001", "hybrid")
    # a gaming user gets gaming items: the hybrid learned the topics from the events
    assert all(r["item_id"].startswith("gaming-") for r in answer["items"][:3])
    metrics = client.get("/metrics").text
    info = 'coldbrew_model_info{encoder="hashing-256",kind="hybrid",name="hashing-256",'
    assert info + 'version="v000001"} 1.0' in metrics
    version = tmp_path / "models" / "v000001"
    assert (version / "config.json").exists() and (version / "arrays.npz").exists()
    meta = json.loads((version / "served.json").read_text())
    assert meta["validation"]["holdout"] > 0  # judged on events it had not seen...
    assert (meta["interactions"], meta["trained_through"]) == (
        len(events()[1]),
        191.0,
    )  # ...served with them
    with np.load(version / "arrays.npz", allow_pickle=False) as arrays:  # no pickle inside
        assert "weights" in arrays.files
    client.__exit__(None, None, None)
    again = served()
    assert recommend(again, user_id="u1", k=5, explain=False) == answer


def test_a_refit_killed_midway_leaves_the_serving_model(
    served: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = served()
    engine = client.app.state.engine  # type: ignore[attr-defined]
    before = recommend(client, user_id="u2", k=5, explain=False)
    assert client.post("/admin/refit", headers=WRITE).json()["status"] == "started"
    process = engine.refitter.process
    deadline = time.monotonic() + 60
    while process.pid is None and time.monotonic() < deadline:  # forked by the supervisor
        time.sleep(0.002)
    # killed within milliseconds of its fork: well inside the job (a forked refit of this tiny
    # catalogue ends in well under a second, so a fixed wait could outlive it)
    os.kill(process.pid, signal.SIGKILL)
    status = wait_for_refit(client)
    assert status["outcomes"]["failed"] == 1 and "-9" in status["last"]["error"]
    assert status["version"] == "v000001"
    assert recommend(client, user_id="u2", k=5, explain=False) == before
    assert sorted(p.name for p in (tmp_path / "models").iterdir() if p.name[0] == "v") == [
        "v000001"
    ]
    client.__exit__(None, None, None)
    assert recommend(served(), user_id="u2", k=5, explain=False) == before  # restart: same
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".tmp-")]


def test_refits_fork_from_one_server_that_imported_their_libraries(
    served: Callable[..., TestClient],
) -> None:
    """Issue 29: a refit pays for no import. Each is a fresh process forked from the refit
    server, the same for every refit, and starts its job with every library it uses imported;
    each publishes its version, with the imported objects frozen out of the collector's walks."""
    client = served()
    workers = []
    for refits in (1, 2):
        assert client.post("/admin/refit", headers=WRITE).json()["status"] == "started"
        status = wait_for_refit(client, refits=refits)
        assert status["last"]["swapped"] and status["version"] == f"v00000{refits + 1}", status
        workers.append(status["last"]["worker"])
    first, second = workers
    assert first["pid"] != second["pid"]
    assert first["parent"] == second["parent"] == worker.server_pid()
    assert first["preloaded"] == second["preloaded"] == list(worker.MODULES)
    assert first["imported"] == []  # a hashing encoder: neither PyTorch nor onnxruntime
    # the server's imports are out of the collector's walks (hundreds of thousands of objects)
    assert first["frozen"] > 100_000 and second["frozen"] > 100_000


def test_forget_user_reaches_the_model_files_at_once(
    served: Callable[..., TestClient], tmp_path: Path
) -> None:
    """Model files never hold a user's words or a value only they hold; after a forget they
    hold not even the id, at once (the forced refit takes its time)."""
    client = served()
    engine = client.app.state.engine  # type: ignore[attr-defined]
    models = tmp_path / "models"
    before = recommend(client, user_id="u2", k=5, explain=False)
    assert _files_mention(models, FORGET)  # trained on their data: the id maps their rows
    assert not any(_files_mention(models, secret) for secret in SECRETS)
    assert FORGET in engine.model.known_users()
    assert client.delete(f"/users/{FORGET}", headers=WRITE).status_code == 200
    assert FORGET not in engine.model.known_users()  # the served state, at once
    assert not any(_files_mention(models, s) for s in (FORGET, *SECRETS))  # the files too
    assert sorted(p.name for p in models.iterdir() if p.name[0] == "v") == ["v000001"]
    status = wait_for_refit(client)  # the forced refit
    assert status["outcomes"]["swapped"] == 1 and status["version"] == "v000002"
    assert sorted(p.name for p in models.iterdir() if p.name[0] == "v") == ["v000002"]
    assert not any(_files_mention(models, s) for s in (FORGET, *SECRETS))
    after = recommend(client, user_id="u2", k=5, explain=False)
    assert (before["model_version"], after["model_version"]) == ("v000001", "v000002")


def test_a_forget_cancels_the_refit_that_read_the_user(
    served: Callable[..., TestClient], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A refit running at the forget read the user: it is ended at once (its files would hold
    them), and the forced refit follows it."""
    client = served()
    assert client.post("/admin/refit", headers=WRITE).json()["status"] == "started"
    with caplog.at_level("WARNING", logger="coldbrew.live.refit"):
        assert client.delete(f"/users/{FORGET}", headers=WRITE).status_code == 200
        deadline = time.monotonic() + 180
        status = client.get("/admin/refit", headers=WRITE).json()
        while status["outcomes"]["swapped"] < 1 or status["running"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
            status = client.get("/admin/refit", headers=WRITE).json()
    assert status["outcomes"] == {"swapped": 1, "kept": 0, "failed": 1}
    assert status["version"] == "v000002" and status["last"]["forced"]
    assert "refit failed: cancelled: a user was forgotten" in caplog.text
    models = tmp_path / "models"
    assert sorted(p.name for p in models.iterdir()) == ["CURRENT", "v000002"]  # nothing staged
    assert not any(_files_mention(models, s) for s in (FORGET, *SECRETS))


def test_a_rewritten_version_answers_as_before_a_restart(
    served: Callable[..., TestClient],
) -> None:
    """The version a forget rewrites from the served model loads to the same answers."""
    client = served()
    client.app.state.engine.refitter = None  # type: ignore[attr-defined]  # no forced refit
    assert client.delete(f"/users/{FORGET}", headers=WRITE).status_code == 200
    answers = [recommend(client, user_id=u, k=5, explain=False) for u in ("u1", "u2", "u3")]
    client.__exit__(None, None, None)
    again = served()
    assert [recommend(again, user_id=u, k=5, explain=False) for u in ("u1", "u2", "u3")] == answers


def _files_mention(root: Path, text: str) -> bool:
    needles = (text.encode("utf-8"), text.encode("utf-32-le"))
    return any(
        any(n in path.read_bytes() for n in needles) for path in root.rglob("*") if path.is_file()
    )


def test_a_new_item_is_live_in_every_part(served: Callable[..., TestClient]) -> None:
    client = served()
    engine = client.app.state.engine  # type: ignore[attr-defined]
    item = {"id": "lantern", "title": "Solar camping lantern", "description": "lantern for tents"}
    assert client.post("/items", json=item, headers=WRITE).status_code == 200
    query, _ = engine.user_query(UserQuery(text="solar camping lantern"))
    for name, part in engine.model.parts.items():
        row = part.item_ids.row("lantern")
        scores = part.score([part.resolve(query)])[0]
        assert np.isfinite(scores[row]), name
        if name in ("lm", "lexical"):  # the parts that read text rank it first
            assert int(np.argmax(scores)) == row, name
    assert engine.model.parts["cf_map"].mapped[engine.model.item_ids.row("lantern")]
    top = recommend(client, text="solar camping lantern", k=1)["items"][0]
    assert top["item_id"] == "lantern"
    assert "lantern" in top["explanation"]["text"]


def test_feedback_moves_a_user_in_the_cf_part_before_any_refit(
    served: Callable[..., TestClient],
) -> None:
    client = served()
    engine = client.app.state.engine  # type: ignore[attr-defined]
    cf = engine.model.parts["cf"]

    def cf_scores() -> np.ndarray:
        query, _ = engine.user_query(UserQuery(user_id="u1"))  # a gaming user
        return cf.score([engine.model.resolve(query)])[0]

    cooking = cf.item_ids.rows([f"cooking-{n}" for n in range(10)])
    before = cf_scores()
    for n in range(3):
        feedback = {"user_id": "u1", "item_id": f"cooking-{n}", "event": "like"}
        assert client.post("/feedback", json=feedback, headers=WRITE).status_code == 200
    after = cf_scores()
    assert after[cooking[3:]].mean() > before[cooking[3:]].mean() + 0.05
    answer = recommend(client, user_id="u1", k=10, explain=False)
    assert answer["model_version"] == "v000001"  # no refit happened
    assert any(r["item_id"].startswith("cooking-") for r in answer["items"])


def test_a_known_users_reason_cites_cf_where_cf_decided(
    served: Callable[..., TestClient],
) -> None:
    client = served()
    for item in recommend(client, user_id="u3", k=5)["items"]:
        parts = item["explanation"]["parts"]
        assert sum(parts.values()) == pytest.approx(item["score"], abs=1e-3)
        top = max(parts, key=parts.get)
        if top in ("cf", "cf_f64", "itemknn"):
            assert item["explanation"]["text"].startswith("People who liked “")
            liked = item["explanation"]["liked"][0]["item_id"]
            assert liked.startswith("reading-")  # u3 reads: the cited item is one they liked


def test_the_serving_rule() -> None:
    serving = np.array([1.0, 0.5, 0.0, 1.0, 0.63, 0.0, 1.0, 0.5])
    assert should_serve(serving.copy(), serving, forced=False)  # a tie: the newer model
    noisy = np.array([1.0, 0.5, 0.0, 0.63, 0.63, 0.0, 1.0, 0.63])  # lower, within the noise
    assert should_serve(noisy, serving, forced=False)
    worse = serving - 0.3  # lower on every event
    assert not should_serve(worse, serving, forced=False)
    assert should_serve(worse, serving, forced=True)  # forget-user: served regardless
    assert should_serve(np.zeros(0), np.zeros(0), forced=False)  # nothing new to judge by


def test_a_large_catalogue_scores_candidates_with_the_same_top(
    served: Callable[..., TestClient],
) -> None:
    full = served()
    answers = {u: recommend(full, user_id=u, k=5, explain=False) for u in ("u1", "u2", "u7")}
    full.__exit__(None, None, None)
    client = served(score_all_below=0)  # every catalogue is "large": candidates only
    engine = client.app.state.engine  # type: ignore[attr-defined]
    engine.serving = replace(engine.serving, candidates=8)  # few, so not every item is one
    query, seen = engine.user_query(UserQuery(user_id="u1"))
    rows = engine.candidates(engine.model, query, seen)
    assert 8 <= len(rows) < len(engine.model.item_ids)
    hits = 0
    for user, answer in answers.items():
        found = recommend(client, user_id=user, k=5, explain=False)
        full_scores = {r["item_id"]: r["score"] for r in answer["items"]}
        for r in found["items"]:  # a candidate scores exactly as in the whole catalogue
            if r["item_id"] in full_scores:
                assert r["score"] == pytest.approx(full_scores[r["item_id"]], abs=1e-4)
                hits += 1
        assert found["items"][0]["item_id"] == answer["items"][0]["item_id"], user
    assert hits / 15 >= 0.8  # recall of the served top 5 against scoring every item
    for item in recommend(client, user_id="u1", k=3)["items"]:  # explained from candidates too
        assert sum(item["explanation"]["parts"].values()) == pytest.approx(item["score"], abs=1e-3)
    filtered = recommend(client, user_id="u1", k=3, filters={"category": ["cooking"]})
    assert [r["item_id"][:8] for r in filtered["items"]] == ["cooking-"] * 3


def test_a_candidate_worse_than_the_serving_model_is_not_served(tmp_path: Path) -> None:
    """The kept path end to end: the serving version here has (unlike any real one) learned the
    very events the refit holds out, on likes with no pattern to learn, so the fresh candidate
    ranks those events worse and is dropped."""
    from coldbrew.live.engine import Engine, Serving
    from coldbrew.live.records import dataset_from_records
    from coldbrew.live.refit import RefitJob, build_hybrid, run_refit, save_catalog
    from coldbrew.live.versions import VersionInfo
    from coldbrew.store import Interaction, Item, Store

    rng = np.random.default_rng(3)
    serving = Serving(models_dir=str(tmp_path / "models"), refit_every=0, refit_minutes=0)
    engine = Engine(Store(str(tmp_path / "noise.sqlite")), HashingEncoder(64), serving=serving)
    engine.load()
    engine.upsert_items([Item(f"i{n}", f"item number {n}") for n in range(60)])
    likes = [(u, int(i)) for u in range(40) for i in rng.choice(60, 10, replace=False)]
    order = rng.permutation(len(likes))
    engine.add_interactions(
        [
            Interaction(f"e{t}", f"u{likes[k][0]}", f"i{likes[k][1]}", "like", float(t))
            for t, k in enumerate(order)
        ]
    )
    store, versions = engine.store, engine.versions
    items, users, events = store.items(), store.users(), store.interactions()
    knows_all = build_hybrid(engine.encoder).fit(dataset_from_records(items, users, events))
    staged = versions.staging()
    knows_all.save(staged)
    save_catalog(staged, items)
    cut = sorted(e.timestamp for e in events)[-len(events) // 5 - 1]  # claims not to know them
    info = VersionInfo(version="", kind="hybrid", interactions=len(events), trained_through=cut)
    cheat = versions.commit(staged, info)
    versions.publish(cheat)
    job = RefitJob(store.url, str(versions.root), engine.encoder.config(), serving=cheat)
    outcome = run_refit(job, engine.encoder.inner)
    scores = outcome["validation"]
    assert scores["candidate"]["ndcg20"] < scores["serving"]["ndcg20"], scores
    assert not outcome["swapped"] and "version" not in outcome
    assert versions.versions() == [cheat] and versions.current() == cheat  # nothing new
    engine.close()
    store.close()


def test_a_saved_model_is_served_as_it_is(tmp_path: Path) -> None:
    """``--model DIR``: a model saved elsewhere answers, with its directory's name as version;
    items the database has and it lacks are added to it; the service does not refit it."""
    from coldbrew.live.records import dataset_from_records
    from coldbrew.models.zeroshot import ZeroShotRecommender
    from coldbrew.store import Item

    items = [Item(f"{t}-{n}", f"{t} thing {n}") for t in ("tent", "mouse") for n in range(5)]
    saved = ZeroShotRecommender(HashingEncoder(256)).fit(dataset_from_records(items[:8], [], []))
    saved.save(tmp_path / "my-model")
    client = open_app(tmp_path / "shop.sqlite", model=str(tmp_path / "my-model"))
    rows = [{"id": i.item_id, "title": i.title} for i in items]
    assert client.post("/items/batch", json={"items": rows}, headers=WRITE).status_code == 200
    answer = recommend(client, text="mouse thing 4", k=1)
    assert (answer["model_version"], answer["model_kind"]) == ("my-model", "zeroshot")
    assert answer["items"][0]["item_id"] == "mouse-4"  # one it never saw, read by its encoder
    with pytest.raises(ValueError, match="COLDBREW_MODEL='nowhere': choose hybrid, zeroshot"):
        make_settings("x.sqlite", model="nowhere")  # stops at start, not in the lifespan
    refit = client.post("/admin/refit", headers=WRITE).json()
    assert refit["status"] == "off" and refit["serving"] == str(tmp_path / "my-model")
    client.__exit__(None, None, None)


def test_an_item_neighbour_reason_names_the_liked_item_that_scored_it(tmp_path: Path) -> None:
    """A saved ItemKNN answers a user with history; its reason is the liked item whose learned
    similarity to the recommended one is highest, never one the user did not like."""
    from coldbrew.live.records import dataset_from_records
    from coldbrew.models.cf import ItemKNNRecommender
    from coldbrew.store import Interaction, Item

    items = [Item(f"{t}-{n}", f"{t} thing {n}") for t in ("tent", "mouse") for n in range(4)]
    pairs = [(u, f"tent-{n}") for u in range(6) for n in (0, 1)]  # tents 0 and 1 go together
    pairs += [(u, f"mouse-{n}") for u in range(6, 12) for n in (2, 3)]
    pairs += [(0, "tent-2"), (7, "tent-3")]
    events = [Interaction(f"e{i}", f"u{u}", item, "like", float(i)) for i, (u, item) in
              enumerate(pairs)]  # fmt: skip
    saved = ItemKNNRecommender().fit(dataset_from_records(items, [], events))
    saved.save(tmp_path / "knn")
    client = open_app(tmp_path / "shop.sqlite", model=str(tmp_path / "knn"))
    rows = [{"id": i.item_id, "title": i.title} for i in items]
    assert client.post("/items/batch", json={"items": rows}, headers=WRITE).status_code == 200
    liked = {"user_id": "new", "item_id": "tent-0", "event": "like", "id": "x1", "timestamp": 1.0}
    assert client.post("/interactions", json=liked, headers=WRITE).status_code == 200
    top = recommend(client, user_id="new", k=1)["items"][0]
    assert top["item_id"] == "tent-1"
    explanation = top["explanation"]
    assert explanation["text"] == "People who liked “tent thing 0” also liked this."
    assert [entry["item_id"] for entry in explanation["liked"]] == ["tent-0"]
    assert 0 < explanation["liked"][0]["similarity"] <= 1
    client.__exit__(None, None, None)


def test_a_what_came_next_reason_names_the_recent_like_it_followed(tmp_path: Path) -> None:
    """A saved transitions model answers from the user's latest likes; its reason is the recent
    like the item most often followed, in words that say so."""
    from coldbrew.live.records import dataset_from_records
    from coldbrew.models.sequence import TransitionRecommender
    from coldbrew.store import Interaction, Item

    items = [Item(f"tent-{n}", f"tent thing {n}") for n in range(4)]
    runs = [(u, f"tent-{n}") for u in range(6) for n in (0, 1, 2)]  # tent 0, then 1, then 2
    events = [Interaction(f"e{i}", f"u{u}", item, "like", float(i)) for i, (u, item) in
              enumerate(runs)]  # fmt: skip
    saved = TransitionRecommender(window=1).fit(dataset_from_records(items, [], events))
    saved.save(tmp_path / "next")
    client = open_app(tmp_path / "shop.sqlite", model=str(tmp_path / "next"))
    rows = [{"id": i.item_id, "title": i.title} for i in items]
    assert client.post("/items/batch", json={"items": rows}, headers=WRITE).status_code == 200
    for n, item in enumerate(("tent-3", "tent-1")):  # the latest like decides
        like = {"user_id": "new", "item_id": item, "event": "like", "id": f"x{n}", "timestamp": n}
        assert client.post("/interactions", json=like, headers=WRITE).status_code == 200
    top = recommend(client, user_id="new", k=1)["items"][0]
    assert top["item_id"] == "tent-2"
    explanation = top["explanation"]
    assert explanation["text"] == "People who liked “tent thing 1” went on to like this."
    assert [entry["item_id"] for entry in explanation["liked"]] == ["tent-1"]
    assert explanation["liked"][0]["similarity"] == 1.0  # all that followed tent 1 was tent 2
    client.__exit__(None, None, None)


def test_a_stored_vector_is_reused_only_for_its_own_text(tmp_path: Path) -> None:
    """An item whose text changed no longer lends its vector to its old text."""
    from coldbrew.live.engine import Engine, Serving
    from coldbrew.live.records import item_text
    from coldbrew.store import Item, Store

    encoder = HashingEncoder(64)
    serving = Serving(models_dir=str(tmp_path / "models"), refit_every=0, refit_minutes=0)
    engine = Engine(Store(str(tmp_path / "s.sqlite")), encoder, serving=serving).load()
    engine.upsert_items([Item("x", "red camping tent")])
    engine.upsert_items([Item("x", "blue gaming mouse")])  # x's vector is now the mouse's
    engine.upsert_items([Item("y", "red camping tent")])  # must be encoded, not borrowed
    stored = engine.store.vectors("item", engine.encoder_name)
    tent = encoder.encode([item_text(Item("y", "red camping tent"))], kind="passage")[0]
    np.testing.assert_allclose(stored["y"], tent, atol=1e-6)
    engine.delete_item("y")
    assert engine.stored_passage(item_text(Item("y", "red camping tent"))) is None
    engine.close()
    engine.store.close()
