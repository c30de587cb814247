"""The engine over an HNSW graph: same answers after a restart; and the store's timestamps."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("faiss")

from coldbrew.config.settings import Settings
from coldbrew.index import persist
from coldbrew.index.hnsw import HNSWIndex
from coldbrew.live.answers import Query
from coldbrew.live.engine import Engine
from coldbrew.models.query import UserQuery
from coldbrew.store import Interaction, Item, Store, User
from coldbrew.text import HashingEncoder

THINGS = ["jacket", "tent", "keyboard", "skillet", "novel", "lamp", "boots", "camera"]
USES = ["hiking", "gaming", "cooking", "reading", "travel", "winter", "office"]


def catalogue() -> list[Item]:
    return [
        Item(f"i{n}", f"{THINGS[n % 8]} for {USES[n % 7]} no {n}", f"a {THINGS[n % 8]} {n % 13}")
        for n in range(400)
    ]


def open_engine(db: Path, graph: Path) -> Engine:
    # exact_below=0: search by graph even at this size, as a 100k-item catalogue would
    index = HNSWIndex(256, exact_below=0)
    return Engine(Store(str(db)), HashingEncoder(256), index=index, graph_path=str(graph)).load()


QUERIES = [
    Query(UserQuery(user_id="u1"), k=8),
    Query(UserQuery(text="a warm jacket for winter hiking"), k=8, explain=False),
    Query(UserQuery(liked=("i3", "i11")), k=8),
]


def saved_structures(graph: Path) -> int:
    """How many structure files a save left at ``graph`` (one: earlier ones are swept), with
    no temporary file beside them."""
    assert not list(graph.parent.glob(graph.name + ".*.tmp"))
    return len(persist.structures(graph))


def answers(engine: Engine) -> list[list[tuple[str, float]]]:
    return [[(r.item.item_id, r.score) for r in engine.recommend(q)] for q in QUERIES]


def same_answers(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> bool:
    """The same scores (to float32 noise) and the same items, except among items tied with the
    last one (which of two equal scores makes the cut is arbitrary)."""
    if [round(s, 5) for _, s in a] != [round(s, 5) for _, s in b]:
        return False
    cut = round(a[-1][1], 5)
    return [i for i, s in a if round(s, 5) > cut] == [i for i, s in b if round(s, 5) > cut]


def test_restart_reuses_the_saved_graph_and_answers_identically(tmp_path: Path) -> None:
    db, graph = tmp_path / "shop.sqlite", tmp_path / "shop.sqlite.hnsw"
    first = open_engine(db, graph)
    assert first.saver is not None
    first.saver.join(timeout=60)  # saved from a thread once ready, before any close
    assert saved_structures(graph) == 1 and Path(f"{graph}.json").exists()
    first.upsert_items(catalogue()[:380])  # unchanged items keep their graph nodes
    first.upsert_items([Item("i5", "a brand new camera for travel"), Item("new", "winter tent")])
    first.upsert_users([User("u1", "I like cooking and reading")])
    first.add_interactions([Interaction("x1", "u1", "i7", "like", 1.0)])
    first.delete_item("i9")
    before = answers(first)
    assert all(len(a) == 8 for a in before)
    assert all("i9" not in [i for i, _ in a] for a in before)
    first.close()
    first.store.close()

    second = open_engine(db, graph)
    assert second.index.graph_size == first.index.graph_size  # the saved graph, not a rebuild
    assert all(same_answers(x, y) for x, y in zip(answers(second), before, strict=True))
    second.store.close()


def test_a_stale_graph_file_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    db, graph = tmp_path / "shop.sqlite", tmp_path / "shop.sqlite.hnsw"
    first = open_engine(db, graph)
    assert first.saver is not None
    first.saver.join(timeout=60)  # the file saved after the start, then the catalogue moves on
    first.delete_item("i2")
    first.store.close()  # killed: no close(), the file describes the catalogue before the delete
    second = open_engine(db, graph)
    assert second.index.graph_size == 399
    found = [
        r.item.item_id for r in second.recommend(Query(UserQuery(text="jacket for travel"), k=50))
    ]
    assert "i2" not in found and len(found) == 50
    second.store.close()


@pytest.fixture(autouse=True)
def _catalogue_in_store(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "shop.sqlite"))
    with store.transaction() as session:
        store.upsert_items(session, catalogue())
    store.close()


def test_the_index_file_goes_beside_a_sqlite_file_else_under_coldbrew_by_url() -> None:
    assert Settings(db_url="data/shop.sqlite").graph_path() == "data/shop.sqlite.hnsw"
    assert Settings(db_url="sqlite:////srv/shop.db").graph_path() == "/srv/shop.db.hnsw"
    assert Settings(db_url="sqlite:///:memory:").graph_path() is None
    pg, other = "postgresql://app:secret@db/shop", "postgresql://app:secret@db/other"
    path = Settings(db_url=pg).graph_path()
    assert path is not None and path.startswith(os.path.join(".coldbrew", "index", ""))
    assert path.endswith(".hnsw") and "secret" not in path and "db" not in Path(path).name
    assert Settings(db_url=other).graph_path() != path  # one file a database
    assert Settings(db_url=pg).models_path() == os.path.join(".coldbrew", "models", path[-17:-5])
    assert Settings(db_url="postgresql://db/x", index_path="/g.hnsw").graph_path() == "/g.hnsw"
    assert Settings.from_env({"COLDBREW_INDEX": "exact"}).index == "exact"


def test_an_updated_item_gets_a_new_updated_at(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select, update

    from coldbrew.store.tables import ItemRow

    store = Store(str(tmp_path / "shop.sqlite"))
    old = datetime(2001, 1, 1, tzinfo=UTC)
    with store.transaction() as session:
        session.execute(update(ItemRow).where(ItemRow.item_id == "i1").values(updated_at=old))
    with store.transaction() as session:
        store.upsert_items(session, [Item("i1", "a brand new title")])
    with store.transaction() as session:
        stamp = session.execute(select(ItemRow.updated_at).where(ItemRow.item_id == "i1")).scalar()
    store.close()
    assert stamp is not None and stamp.year > 2001


@pytest.mark.slow
def test_onnx_and_pytorch_runtimes_serve_the_same_answers_from_one_database(
    tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient
    from servicekit import load_catalogue, make_settings

    from coldbrew.serve import create_app
    from coldbrew.text.onnx import OnnxEncoder

    db = str(tmp_path / "runtimes.sqlite")
    answers = {}
    for runtime in ("onnx", "torch"):
        app = create_app(make_settings(db, encoder="default", encoder_runtime=runtime))
        with TestClient(app) as client:
            if runtime == "onnx":  # the first run encodes and stores; the second reuses
                load_catalogue(client)
            inner = client.app.state.engine.encoder.inner  # type: ignore[attr-defined]
            assert isinstance(inner, OnnxEncoder) == (runtime == "onnx")
            body = {"text": "a light jacket for spring", "k": 5, "explain": False}
            response = client.post("/recommend", json=body)
            assert response.status_code == 200, response.text
            found = response.json()["items"]
            answers[runtime] = [(r["item_id"], round(r["score"], 4)) for r in found]
    assert answers["onnx"] == answers["torch"]
    assert answers["onnx"][0][0] == "jacket"
    assert Settings.from_env({"COLDBREW_ENCODER_RUNTIME": "torch"}).encoder_runtime == "torch"


@pytest.mark.slow
def test_the_int8_runtime_serves_and_stores_its_vectors_under_its_own_name(
    tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient
    from servicekit import counts, load_catalogue, make_settings

    from coldbrew.serve import create_app
    from coldbrew.text.int8 import Int8OnnxEncoder

    db = str(tmp_path / "int8.sqlite")
    app = create_app(make_settings(db, encoder="default", encoder_runtime="onnx-int8"))
    with TestClient(app) as client:
        load_catalogue(client)
        engine = client.app.state.engine  # type: ignore[attr-defined]
        assert isinstance(engine.encoder.inner, Int8OnnxEncoder)
        body = {"text": "a light jacket for spring", "k": 5, "explain": False}
        response = client.post("/recommend", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["items"][0]["item_id"] == "jacket"
        stored = engine.store.vectors("item", "st:all-MiniLM-L6-v2+int8")
        assert len(stored) == counts(client)["items"]
        assert not engine.store.vectors("item", "st:all-MiniLM-L6-v2")  # never the float name


@pytest.mark.parametrize("blocked", ["folder", "file"])
def test_a_graph_that_cannot_be_saved_is_logged_and_the_engine_answers_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, blocked: str
) -> None:
    """The save after start-up runs in a thread: its failure (the folder cannot be made, or
    faiss cannot write the file) is a warning, not a lost error."""
    if blocked == "folder":
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("a file where the graph's folder should be")
        graph = blocker / "shop.hnsw"
    else:
        graph = tmp_path / "shop.hnsw"
        (tmp_path / "shop.hnsw.json").mkdir()  # a folder where the record is renamed to
    engine = open_engine(tmp_path / "shop.sqlite", graph)
    assert engine.saver is not None
    with caplog.at_level(logging.WARNING, logger="coldbrew.live.engine"):
        engine.saver.join(timeout=60)
    assert not engine.saver.is_alive()
    assert any("could not save the index" in r.getMessage() for r in caplog.records)
    assert len(engine.recommend(QUERIES[1])) == 8
    assert not list(tmp_path.glob("*.tmp"))  # the failed write's temporary file is gone
    engine.store.close()


def test_a_process_that_exits_without_close_still_saves_the_index(tmp_path: Path) -> None:
    """The save after start-up is not a daemon: leaving the interpreter waits for it."""
    graph = tmp_path / "shop.sqlite.hnsw"
    script = (
        "from coldbrew.index.hnsw import HNSWIndex\n"
        "from coldbrew.live.engine import Engine\n"
        "from coldbrew.store import Store\n"
        "from coldbrew.text import HashingEncoder\n"
        f"Engine(Store({str(tmp_path / 'shop.sqlite')!r}), HashingEncoder(256),\n"
        f"       index=HNSWIndex(256, exact_below=0), graph_path={str(graph)!r}).load()\n"
        "print('loaded', flush=True)\n"  # and out, with no close() and no join
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "loaded", done.stderr
    assert saved_structures(graph) == 1
    second = open_engine(tmp_path / "shop.sqlite", graph)
    assert second.saver is None  # the saved index was reused: nothing built, nothing to save
    assert len(second.recommend(QUERIES[1])) == 8
    second.store.close()


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_default_index_path_is_reused_on_either_database(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Without COLDBREW_INDEX_PATH, PostgreSQL's index is saved under .coldbrew/index in the
    working directory, as SQLite's is beside its file, and a restart reuses it."""
    monkeypatch.chdir(tmp_path)
    if db_url == "postgres":
        server = request.getfixturevalue("pg_server")
        server.psql("CREATE SCHEMA graph_default;")
        url = f"{server.get_uri()}&options=-csearch_path%3Dgraph_default"
        store = Store(url)
        with store.transaction() as session:
            store.upsert_items(session, catalogue())
        store.close()
    else:
        url = str(tmp_path / "shop.sqlite")
    path = Settings(db_url=url).graph_path()
    assert path is not None
    first = Engine(Store(url), HashingEncoder(256), index=HNSWIndex(256, exact_below=0),
                   graph_path=path).load()  # fmt: skip
    assert first.saver is not None
    first.upsert_users([User("u1", "I like cooking and reading")])  # a write: the index stays
    before = answers(first)
    first.close()
    first.store.close()
    assert saved_structures(Path(path).resolve()) == 1
    second = Engine(Store(url), HashingEncoder(256), index=HNSWIndex(256, exact_below=0),
                    graph_path=path).load()  # fmt: skip
    assert second.saver is None  # reused, not built again
    assert all(same_answers(x, y) for x, y in zip(answers(second), before, strict=True))
    second.store.close()
