"""``coldbrew serve --data``: a dataset folder into the database, then served."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from servicekit import WRITE, WRITE_KEY, get_json, make_settings, serve_process

from coldbrew.cli.serve import import_dataset
from coldbrew.data import load_dataset
from coldbrew.data.schema import Dataset
from coldbrew.live.importer import event_of
from coldbrew.store import Store
from coldbrew.text import HashingEncoder

SHOP = """name = "shop"
[items]
file = "items.csv"
id = "sku"
text = ["title", "desc"]
attributes = ["shelf"]
[users]
file = "users.csv"
id = "uid"
attributes = ["age"]
[interactions]
file = "ratings.csv"
user = "uid"
item = "sku"
value = "stars"
timestamp = "at"
positive_threshold = 4
"""
ITEMS = [
    ("tent", "Ultralight tent", "two person shelter for camping trips", "outdoor"),
    ("boots", "Hiking boots", "leather boots for mountain trails", "shoes"),
    ("mouse", "Gaming mouse", "light wireless mouse for esports", "electronics"),
    ("pan", "Cast iron skillet", "heavy pan for searing steak", "kitchen"),
    ("lamp", "Desk lamp", "warm reading light with a dimmer", "home"),
]


def write_shop(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.toml").write_text(SHOP)
    rows = "".join(f"{sku},{title},{desc},{shelf}\n" for sku, title, desc, shelf in ITEMS)
    (folder / "items.csv").write_text("sku,title,desc,shelf\n" + rows)
    (folder / "users.csv").write_text("uid,age\nann,25-34\nbob,18-24\n")
    (folder / "ratings.csv").write_text(
        "uid,sku,stars,at\nann,tent,5,1\nann,boots,4,2\nbob,mouse,5,1\nbob,pan,1,2\nbob,lamp,3,3\n"
    )
    return folder


def _import(db: Path, data: Dataset) -> dict[str, int]:
    settings = make_settings(str(db), encoder="hashing")
    return import_dataset(settings, data, HashingEncoder(256))


def test_an_import_maps_every_column_and_runs_twice_to_the_same_rows(tmp_path: Path) -> None:
    data = load_dataset(write_shop(tmp_path / "shop"))
    db = tmp_path / "shop.sqlite"
    assert _import(db, data) == {"items": 5, "users": 2, "interactions": 5}
    store = Store(str(db))
    first = store.counts()
    tent = next(i for i in store.items() if i.item_id == "tent")
    events = {(i.user_id, i.item_id): i.event for i in store.interactions()}
    store.close()
    assert tent.title == "Ultralight tent"  # desc and shelf kept under their own names
    assert tent.attributes == {"desc": "two person shelter for camping trips", "shelf": "outdoor"}
    assert events == {
        ("ann", "tent"): "like",
        ("ann", "boots"): "like",
        ("bob", "mouse"): "like",
        ("bob", "pan"): "dislike",
        ("bob", "lamp"): "view",
    }
    assert _import(db, data) == {"items": 0, "users": 0, "interactions": 0}
    store = Store(str(db))
    assert store.counts() == first  # no duplicate interaction, no extra vector
    store.close()


def test_rating_events_follow_the_threshold() -> None:
    assert [event_of(v, 4.0) for v in (5.0, 4.0, 3.0, 2.0)] == ["like", "like", "view", "dislike"]
    assert event_of(None, 4.0) == event_of(1.0, None) == "like"


def _stop(server: subprocess.Popen[str]) -> tuple[str, str]:
    server.terminate()
    out, err = server.communicate(timeout=30)
    return out, err


def test_serve_data_loads_the_folder_then_answers_and_a_rerun_adds_nothing(
    tmp_path: Path,
) -> None:
    folder = write_shop(tmp_path / "shop")
    db = str(tmp_path / "shop.sqlite")
    env = {**os.environ, "COLDBREW_API_KEYS": WRITE_KEY}
    args = ["--data", str(folder), "--db", db, "--encoder", "hashing", "--model", "zeroshot"]
    server, url = serve_process(args, env)
    try:
        meta = get_json(f"{url}/meta", **{"X-API-Key": WRITE_KEY})
        body = json.dumps({"text": "camping shelter", "k": 1}).encode()
        request = urllib.request.Request(
            f"{url}/recommend", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    finally:
        out, err = _stop(server)
    assert (meta["items"], meta["users"]) == (5, 2)
    assert answer["items"][0]["item_id"] == "tent"
    assert "new or changed: 5 items, 2 users, 5 interactions" in out
    assert "interactions: 100%" in err  # the progress bar, on stderr
    server, url = serve_process(args, env)
    out, _ = _stop(server)
    assert "new or changed: 0 items, 0 users, 0 interactions" in out
    store = Store(db)
    assert store.counts()["interactions"] == 5
    store.close()


def test_serve_data_names_the_bad_file_and_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coldbrew.cli.main import main

    folder = write_shop(tmp_path / "shop")
    with (folder / "ratings.csv").open("a") as ratings:
        ratings.write("ann,tent,many,4\n")
    args = ["serve", "--data", str(folder), "--encoder", "hashing", "--port", "9"]
    assert main([*args, "--db", str(tmp_path / "x.sqlite")]) == 2
    out, err = capsys.readouterr()
    assert "serving on" not in out and not (tmp_path / "x.sqlite").exists()
    assert "ratings.csv, line 7 [stars]: not a number" in err


@pytest.mark.slow
def test_serve_data_loads_ml100k(ml100k: Dataset, tmp_path: Path) -> None:
    """All of ml-100k's items, users and interactions, through the import the command runs,
    then answered (the command's own subprocess run is tested on the small shop above)."""
    db = tmp_path / "ml.sqlite"
    added = _import(db, ml100k)
    assert added == {"items": 1682, "users": 943, "interactions": 100_000}
    from fastapi.testclient import TestClient

    from coldbrew.serve import create_app

    settings = make_settings(str(db), encoder="hashing", model="zeroshot")
    with TestClient(create_app(settings, encoder=HashingEncoder(256))) as client:
        meta = client.get("/meta", headers=WRITE).json()
        answer = client.post("/recommend", json={"text": "Toy Story (1995)", "k": 1}).json()
        assert client.app.state.engine.store.counts()["interactions"] == 100_000  # type: ignore[attr-defined]
    assert (meta["items"], meta["users"]) == (1682, 943)
    assert answer["items"][0]["title"] == "Toy Story (1995)"


def _fine_tuned(data: Dataset, path: Path) -> Path:
    """A saved fine-tuned model over the hashing encoder, trained on ``data``'s own fields."""
    from coldbrew.models.finetuned import FineTunedRecommender

    FineTunedRecommender(HashingEncoder(256)).fit(data).save(path)
    return path


def test_serve_model_reads_the_fields_it_was_trained_on_and_says_what_it_is(
    tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient

    from coldbrew.serve import create_app

    data = load_dataset(write_shop(tmp_path / "shop"))
    run = _fine_tuned(data, tmp_path / "run-7")
    db = tmp_path / "shop.sqlite"
    _import(db, data)
    settings = make_settings(str(db), encoder="hashing", model=str(run))
    with TestClient(create_app(settings, encoder=HashingEncoder(256))) as client:
        meta = client.get("/meta", headers=WRITE).json()
        assert (meta["model"], meta["model_kind"]) == ("finetuned:run-7", "finetuned")
        assert meta["encoder"] == "hashing-256"  # its own encoder reads the queries
        assert 'name="finetuned:run-7"' in client.get("/metrics").text
        # a new item known by its desc alone: the model reads desc, as it was trained to
        item = {"id": "vase", "title": "Gift", "attributes": {"desc": "obsidian carved vase"}}
        assert client.post("/items", json=item, headers=WRITE).status_code == 200
        answer = client.post("/recommend", json={"text": "obsidian carved vase", "k": 1})
        assert answer.json()["items"][0]["item_id"] == "vase"


def test_serve_model_warns_of_fields_the_stored_items_lack(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi.testclient import TestClient

    from coldbrew.serve import create_app

    data = load_dataset(write_shop(tmp_path / "shop"))
    run = _fine_tuned(data, tmp_path / "run-8")
    settings = make_settings(str(tmp_path / "bare.sqlite"), model=str(run))
    with TestClient(create_app(settings, encoder=HashingEncoder(256))) as client:
        item = {"id": "tent", "title": "Ultralight tent"}  # no desc, no shelf
        assert client.post("/items", json=item, headers=WRITE).status_code == 200
    restart = TestClient(create_app(settings, encoder=HashingEncoder(256)))
    with caplog.at_level("WARNING", logger="coldbrew.serve"), restart:
        pass
    assert "trained on the item fields title, desc, shelf" in caplog.text
    assert "the stored items have no desc, shelf" in caplog.text


class _CountingEncoder(HashingEncoder):
    """The hashing encoder, counting the texts it was asked to encode."""

    def __init__(self) -> None:
        super().__init__(256)
        self.texts: list[str] = []

    def encode(self, texts: Any, **kwargs: Any) -> Any:
        self.texts.extend(texts)
        return super().encode(texts, **kwargs)


def test_a_saved_model_reads_a_query_before_the_service_is_ready(tmp_path: Path) -> None:
    """A fine-tuned model's sentence-transformer loads lazily: without this, the first text
    request paid for loading it (17-34 s on the shared machine)."""
    from coldbrew.live.saved import warm
    from coldbrew.models.finetuned import FineTunedRecommender

    encoder = _CountingEncoder()
    model = FineTunedRecommender(encoder).fit(load_dataset(write_shop(tmp_path / "shop")))
    encoder.texts.clear()
    warm(model)
    assert encoder.texts == ["warm-up"]  # once, though it is both the item and query encoder
