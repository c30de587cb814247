"""A catalogue searched by graph keeps its int8 rows in a file-backed mapping beside the
database; the model shares them, answers as from rows in memory, and takes writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from coldbrew.index.ivfpq import IVFPQIndex
from coldbrew.live.answers import Query
from coldbrew.live.engine import Engine, Serving
from coldbrew.models.query import UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.store import Item, Store
from coldbrew.store.rows import Int8Rows
from coldbrew.text import HashingEncoder

DIM = 32
WORDS = ["tent", "lamp", "boots", "novel", "skillet", "camera"]


def start(db: Path, exact_below: int) -> Engine:
    index = IVFPQIndex(DIM, exact_below=exact_below, nbits=6, nprobe=16, rows="int8")
    serving = Serving(model="zeroshot", models_dir=str(db.parent / "models"))
    store = Store(str(db), vector_dtype="int8")
    graph = str(db) + ".index"
    return Engine(store, HashingEncoder(DIM), index=index, graph_path=graph, serving=serving)


def answers(engine: Engine) -> list[list[str]]:
    texts = ["a tent for hiking", "a lamp to read by", "boots for winter"]
    queries = [Query(UserQuery(text=t), k=5) for t in texts]
    return [[r.item.item_id for r in engine.recommend(q)] for q in queries]


def test_graph_searched_rows_are_mapped_shared_and_answer_as_in_memory(tmp_path: Path) -> None:
    items = [Item(f"i{n}", f"{WORDS[n % 6]} no {n}", f"for {n % 11}") for n in range(400)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mapped_engine = start(tmp_path / "a" / "shop.sqlite", 300)
    plain = start(tmp_path / "b" / "shop.sqlite", 10_000)  # exact: no graph, nothing mapped
    for engine in (mapped_engine, plain):
        engine.load()
        engine.upsert_items(items)
    for engine in (mapped_engine, plain):  # a restart reads the rows from the database
        engine.close()
        engine.store.close()
    mapped_engine = start(tmp_path / "a" / "shop.sqlite", 300).load()
    plain = start(tmp_path / "b" / "shop.sqlite", 10_000).load()
    rows = mapped_engine.index.vectors
    assert isinstance(rows, Int8Rows) and isinstance(rows.codes, np.memmap)
    assert not isinstance(plain.index.vectors.codes, np.memmap)  # type: ignore[attr-defined]
    model = mapped_engine.model
    assert isinstance(model, ZeroShotRecommender) and np.shares_memory(
        model.item_vectors.codes, rows.codes
    )
    assert answers(mapped_engine) == answers(plain)
    for engine in (mapped_engine, plain):  # a changed text rewrites its mapped row
        engine.upsert_items([Item("i3", "a camera for birds")])
    assert answers(mapped_engine) == answers(plain)
    assert [p.name for p in (tmp_path / "a").iterdir() if p.name.startswith(".coldbrew")] == []
    for engine in (mapped_engine, plain):
        engine.close()
        engine.store.close()
