"""The engine over compact vectors: float16 in the database and in memory, IVF-PQ search; a
restart encodes nothing, reuses the saved index and answers exactly as before."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("faiss")

from test_service_graph import same_answers

from coldbrew.index.ivfpq import IVFPQIndex
from coldbrew.live.answers import Query
from coldbrew.live.catalog import ItemTable, TextIds, release_free_memory, short_key
from coldbrew.live.engine import Engine, Serving
from coldbrew.live.records import item_text
from coldbrew.models.query import UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.store import Interaction, Item, Store, User
from coldbrew.store.rows import Int8Rows
from coldbrew.text import HashingEncoder
from coldbrew.text.cache import text_digest, text_key

DIM = 64
THINGS = ["jacket", "tent", "keyboard", "skillet", "novel", "lamp", "boots", "camera"]
USES = ["hiking", "gaming", "cooking", "reading", "travel", "winter", "office"]


class CountingEncoder(HashingEncoder):
    """The hashing encoder, counting the texts it is asked to encode."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.texts = 0

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        self.texts += len(texts)
        return super().encode(texts, **kwargs)


def catalogue() -> list[Item]:
    return [
        Item(f"i{n}", f"{THINGS[n % 8]} for {USES[n % 7]} no {n}", f"a {THINGS[n % 8]} {n % 13}")
        for n in range(600)
    ]


def open_engine(db: Path, encoder: HashingEncoder) -> Engine:
    # exact_below=300: search through IVF-PQ at this size, as a million-item catalogue would
    index = IVFPQIndex(DIM, exact_below=300, nbits=6, nprobe=16)
    serving = Serving(model="zeroshot", models_dir=str(db.parent / "models"))
    store = Store(str(db), vector_dtype="float16")
    return Engine(
        store, encoder, index=index, graph_path=str(db) + ".index", serving=serving
    ).load()


QUERIES = [
    Query(UserQuery(user_id="u1"), k=8, explain=False),
    Query(UserQuery(text="a warm jacket for winter hiking"), k=8, explain=False),
    Query(UserQuery(liked=("i3", "i11")), k=8),
]


def answers(engine: Engine) -> list[list[tuple[str, float]]]:
    return [[(r.item.item_id, r.score) for r in engine.recommend(q)] for q in QUERIES]


def bulk_loaded(path: Path, vector_dtype: str) -> Path:
    """A catalogue whose vectors were written straight into the store (as a bulk load does)."""
    store = Store(str(path), vector_dtype=vector_dtype)
    items = catalogue()
    encoder = HashingEncoder(DIM)
    with store.transaction() as session:
        store.register_model(session, encoder.name, encoder.config(), DIM)
        store.upsert_items(session, items)
        vectors = encoder.encode([item_text(i) for i in items], kind="passage")
        store.put_vectors(session, "item", encoder.name, [i.item_id for i in items], vectors)
    store.close()
    return path


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return bulk_loaded(tmp_path / "shop.sqlite", "float16")


def test_start_up_reuses_stored_vectors_and_the_saved_index(db: Path) -> None:
    encoder = CountingEncoder(DIM)
    first = open_engine(db, encoder)
    assert encoder.texts == 0  # every vector came from the database
    assert first.index.vectors.dtype == np.float16 and first.index.ready  # type: ignore[attr-defined]
    first.upsert_users([User("u1", "I like cooking and reading")])
    first.add_interactions([Interaction("x1", "u1", "i7", "like", 1.0)])
    first.upsert_items([Item("new", "a winter tent for hiking"), Item("i5", "a travel camera")])
    first.delete_item("i9")
    encoded = encoder.texts
    assert encoded == 2  # the two upserted items only
    # the zero-shot model holds the index's float16 rows, not a second copy, even after upserts
    model = first.model
    assert isinstance(model, ZeroShotRecommender) and model.item_vectors.dtype == np.float16
    assert np.shares_memory(model.item_vectors, first.index.vectors)
    before = answers(first)
    assert all(len(a) == 8 for a in before)
    assert all("i9" not in [i for i, _ in a] for a in before)
    first.close()
    first.store.close()

    again = CountingEncoder(DIM)
    second = open_engine(db, again)
    assert again.texts == 0  # no item re-encoded at start-up
    size = second.index.graph_size  # type: ignore[attr-defined]
    assert size == first.index.graph_size  # type: ignore[attr-defined]  # reused, not rebuilt
    after = answers(second)
    # the same scores bit for bit (memory held what the database holds), the same items but
    # for the order of items tied with the last one
    assert [[s for _, s in a] for a in after] == [[s for _, s in b] for b in before]
    assert all(same_answers(x, y) for x, y in zip(after, before, strict=True))
    assert again.texts == 2  # requests only: the text query and u1's own words
    second.store.close()


def test_fresh_vectors_are_kept_as_the_database_will_return_them(db: Path) -> None:
    engine = open_engine(db, HashingEncoder(DIM))
    engine.upsert_items([Item("fresh", "a quiet keyboard for the office")])
    stored = engine.store.vectors("item", engine.encoder_name)["fresh"]
    in_memory = engine.index.row_vectors([engine.index.ids.row("fresh")])[0]
    np.testing.assert_array_equal(in_memory, stored)
    plain = HashingEncoder(DIM).encode(["a quiet keyboard for the office"])[0]
    assert np.abs(stored - plain).max() < 1e-3  # float16: close, not equal
    similar = engine.similar_items("fresh", k=5)
    assert [r.item.item_id for r in similar][:1] != ["fresh"] and len(similar) == 5
    engine.store.close()


def test_the_catalogue_is_held_as_compact_records_and_read_back_whole(db: Path) -> None:
    engine = open_engine(db, HashingEncoder(DIM))
    table = engine.items
    assert isinstance(table, ItemTable) and len(table) == 600
    odd = Item("odd", "夹克 “quoted” \\ title", "", {"tags": ["a", "b"], "price": 9.5, "new": None})
    engine.upsert_items([odd])
    assert engine.get_item("odd") == odd  # every field, types and non-ASCII text intact
    assert table._keys.get("odd") == len(table._ends) - 1  # a record in the columns, no Item
    assert table.text_keys["odd"] == text_key(item_text(odd))  # the key the store's vectors use
    assert list(table)[-1] == "odd" and "odd" in table.text_keys
    engine.upsert_items([Item("odd", "a new title")])  # the old text no longer finds its vector
    assert engine.stored_passage(item_text(odd)) is None
    assert engine.stored_passage("a new title") is not None
    engine.delete_item("odd")
    assert "odd" not in table and "odd" not in table.text_keys
    engine.store.close()


def test_a_stored_vector_is_reused_only_for_exactly_the_same_text(db: Path) -> None:
    engine = open_engine(db, HashingEncoder(DIM))
    text = item_text(engine.items["i4"])
    assert engine.stored_passage(text) is not None
    # a different text whose short key collides with i4's finds nothing (the full digest differs)
    other = "a text nobody stored"
    engine.text_ids[short_key(text_digest(other))] = "i4"
    assert engine.stored_passage(other) is None
    engine.store.close()


def test_text_ids_read_at_start_up_are_one_sorted_array_and_writes_a_dict() -> None:
    table = ItemTable()
    for item in catalogue()[:50]:
        table[item.item_id] = item
    ids = TextIds()
    ids.rebuild(table)
    assert not ids._recent and len(ids._keys) == 50  # no dict entry per start-up item
    assert all(ids.get(short_key(table.digest(i))) == i for i in table)
    assert ids.get(short_key(text_digest("no such text"))) is None
    ids[short_key(table.digest("i3"))] = "i7"  # a write since start-up is asked first
    assert ids.get(short_key(table.digest("i3"))) == "i7"
    ids.discard(short_key(table.digest("i3")), "i7")
    assert ids.get(short_key(table.digest("i3"))) == "i3"  # back to the array's entry


def test_an_item_loaded_at_start_up_that_changes_or_goes_no_longer_finds_its_vector(
    db: Path,
) -> None:
    engine = open_engine(db, HashingEncoder(DIM))
    old = item_text(engine.items["i5"])
    assert engine.stored_passage(old) is not None
    engine.upsert_items([Item("i5", "a brand new lamp")])
    assert engine.stored_passage(old) is None  # its key stays in the array; the digest differs
    assert engine.stored_passage("a brand new lamp") is not None
    gone = item_text(engine.items["i6"])
    engine.delete_item("i6")
    assert engine.stored_passage(gone) is None
    engine.store.close()


def test_released_memory_includes_what_a_frame_of_strings_left_in_pyarrows_pool() -> None:
    """pandas 3 holds a frame's strings in pyarrow's pool, which keeps them once freed."""
    psutil = pytest.importorskip("psutil")
    pd = pytest.importorskip("pandas")
    process = psutil.Process()
    frame = pd.DataFrame({"text": [f"a plain item text number {n}" for n in range(200_000)]})
    del frame
    before = process.memory_info().rss
    release_free_memory()
    assert before - process.memory_info().rss > 5 * 2**20  # ~20 MB of strings handed back


def test_an_item_table_refuses_a_record_under_another_id() -> None:
    table = ItemTable()
    with pytest.raises(ValueError, match="stored under id"):
        table["a"] = Item("b", "title")


def test_an_int8_store_is_served_from_int8_rows_the_model_shares(tmp_path: Path) -> None:
    """``COLDBREW_VECTOR_DTYPE=int8``: IVF-PQ holds the rows as the database does (int8 codes,
    one scale a row: a quarter of float32), the zero-shot model reads the same codes, and a
    restart answers exactly as before."""
    path = bulk_loaded(tmp_path / "shop.sqlite", "int8")

    def start(counting: CountingEncoder) -> Engine:
        serving = Serving(model="zeroshot", models_dir=str(tmp_path / "models"))
        store = Store(str(path), vector_dtype="int8")
        index = "ivfpq"
        return Engine(
            store, counting, index=index, graph_path=str(path) + ".index", serving=serving
        ).load()

    first = start(CountingEncoder(DIM))
    assert first.encoder.inner.texts == 0  # type: ignore[attr-defined]  # all from the store
    rows = first.index.vectors
    assert isinstance(rows, Int8Rows) and rows.codes.dtype == np.int8
    model = first.model
    assert isinstance(model, ZeroShotRecommender) and isinstance(model.item_vectors, Int8Rows)
    assert np.shares_memory(model.item_vectors.codes, rows.codes)  # one copy of the rows
    assert model.item_ids is first.index.ids  # and of the id map
    first.upsert_users([User("u1", "I like cooking and reading")])
    first.add_interactions([Interaction("x1", "u1", "i7", "like", 1.0)])
    first.upsert_items([Item("new", "a winter tent for hiking")])
    stored = first.store.vectors("item", first.encoder_name)
    for item_id in ("i5", "new"):  # memory holds exactly what the database holds
        row = first.index.ids.row(item_id)
        np.testing.assert_array_equal(first.index.row_vectors([row])[0], stored[item_id])
    shared = first.model.item_vectors.codes  # type: ignore[union-attr]
    assert np.shares_memory(shared, first.index.vectors.codes)  # still one copy after upserts
    assert first.model.item_ids is first.index.ids and "new" in first.index.ids
    before = answers(first)
    assert all(len(a) == 8 for a in before)
    assert "new" in [
        r.item.item_id
        for r in first.recommend(Query(UserQuery(text="a winter tent for hiking"), k=3))
    ]
    first.close()
    first.store.close()

    second = start(CountingEncoder(DIM))
    after = answers(second)
    assert [[s for _, s in a] for a in after] == [[s for _, s in b] for b in before]
    assert all(same_answers(x, y) for x, y in zip(after, before, strict=True))
    second.store.close()


def test_int8_rows_read_back_as_float32_and_slice_as_views() -> None:
    x = np.random.default_rng(0).standard_normal((5, DIM)).astype(np.float32)
    rows = Int8Rows.of(x)
    assert rows.shape == (5, DIM) and rows.nbytes == 5 * DIM + 5 * 4
    decoded = rows[np.arange(5)]
    assert decoded.dtype == np.float32
    assert np.abs(decoded - x).max() <= np.abs(x).max() / 127  # half a step at most, per row
    view = rows[1:3]
    assert isinstance(view, Int8Rows) and np.shares_memory(view.codes, rows.codes)
    np.testing.assert_array_equal(np.asarray(view), decoded[1:3])
    rows[2] = np.zeros(DIM)  # assignment quantises; an all-zero row has scale 0
    assert rows.scales[2] == 0 and not rows[[2]].any()
    assert rows.same(Int8Rows(rows.codes.copy(), rows.scales.copy()))
    assert not rows.same(Int8Rows.of(x)) and rows.same(Int8Rows.of(x), [0, 1, 3, 4])
