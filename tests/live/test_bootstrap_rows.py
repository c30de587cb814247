"""The language model a service starts with, built from its index's rows: the very model a fit
over the catalogue's texts gives, unless the catalogue mixes scripts (then it is fitted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coldbrew.live.catalog import ItemTable
from coldbrew.live.engine import Engine, Serving
from coldbrew.live.records import dataset_from_records, ids_dataset, service_profiles
from coldbrew.live.served import index_rows, one_script
from coldbrew.models.query import UserQuery
from coldbrew.models.users import users_of
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.store import Item, Store, User
from coldbrew.store.rows import same_rows
from coldbrew.text import HashingEncoder

DIM = 32
QUERIES = [
    UserQuery(text="a warm tent for winter"),
    UserQuery(liked=("i3", "i11")),
    UserQuery(attributes={"city": "Oslo"}, text="a lamp"),
    UserQuery(user_id="u1"),
]


def catalogue(cjk: int) -> list[Item]:
    english = [
        Item(f"i{n}", f"tent no {n} for hiking", f"tent {n % 7}", {"colour": f"c{n % 3}"})
        for n in range(40)
    ]
    chinese = [Item(f"z{n}", f"帐篷 第{n}号", "适合冬季徒步") for n in range(cjk)]
    return english + chinese + [Item("e1", "café lamp", "déjà vu")]


def start(db: Path, items: list[Item], vector_dtype: str, index: str = "exact") -> Engine:
    store = Store(str(db), vector_dtype=vector_dtype)
    encoder = HashingEncoder(DIM)
    with store.transaction() as session:
        store.register_model(session, encoder.name, encoder.config(), DIM)
        store.upsert_items(session, items)
        store.upsert_users(session, [User("u1", "I hike in winter", {"city": "Oslo"})])
    serving = Serving(model="zeroshot", models_dir=str(db.parent / "models"))
    return Engine(store, encoder, index=index, serving=serving).load()


def fitted(engine: Engine) -> ZeroShotRecommender:
    """The language model fitted over the catalogue's texts, as the service used to start."""
    users = [s.user for s in engine.users.values()]
    held = np.dtype(engine.index.vectors.dtype).name
    model = ZeroShotRecommender(engine.encoder, vector_dtype=held)
    return model.fit(dataset_from_records(list(engine.items.values()), users, []))


@pytest.mark.parametrize(("vector_dtype", "index"), [("float16", "exact"), ("int8", "ivfpq")])
def test_a_one_script_catalogue_starts_from_the_index_rows_as_its_fit_would_hold_them(
    tmp_path: Path, vector_dtype: str, index: str
) -> None:
    if index == "ivfpq":
        pytest.importorskip("faiss")
    engine = start(tmp_path / "shop.sqlite", catalogue(cjk=4), vector_dtype, index)  # 4: few
    rows = index_rows(engine)
    assert rows is not None and same_rows(rows, engine.index.vectors)
    model, reference = engine.model, fitted(engine)
    assert isinstance(model, ZeroShotRecommender) and engine.shared
    assert not len(reference.language_means)  # the fit centres nothing either
    assert same_rows(model.item_vectors, reference.item_vectors)
    assert model.item_ids.same_order(reference.item_ids)
    np.testing.assert_array_equal(model.score(QUERIES), reference.score(QUERIES))
    assert model.item_template == reference.item_template
    assert model.user_template == reference.user_template
    engine.store.close()


def test_a_catalogue_in_two_scripts_is_fitted_and_centred(tmp_path: Path) -> None:
    engine = start(tmp_path / "shop.sqlite", catalogue(cjk=6), "float16")
    assert not one_script(engine.items) and index_rows(engine) is None
    model = engine.model
    assert isinstance(model, ZeroShotRecommender) and len(model.language_means) == 2
    np.testing.assert_array_equal(model.score(QUERIES), fitted(engine).score(QUERIES))
    engine.store.close()


def test_only_records_beyond_ascii_are_named_as_possibly_cjk() -> None:
    table = ItemTable()
    for item in catalogue(cjk=2):
        table[item.item_id] = item
    assert list(table.non_ascii()) == ["z0", "z1", "e1"]
    assert one_script(table)  # two CJK texts: fewer than a script group needs


def test_fit_rows_wants_one_row_per_item() -> None:
    model = ZeroShotRecommender(HashingEncoder(DIM))
    spec, profiles = service_profiles([])
    with pytest.raises(ValueError, match="1 rows given for 2 items"):
        model.fit_rows(spec, ["a", "b"], profiles, np.zeros((1, DIM), dtype=np.float32))
    with pytest.raises(ValueError, match="no items"):
        model.fit_rows(spec, [], profiles, np.zeros((0, DIM), dtype=np.float32))


@pytest.mark.parametrize(
    "attributes",
    [
        [{"city": "Oslo", "age": 30, "score": 0.5}, {"city": "Bergen", "age": 41}, {"age": 7}],
        [{"age": 30}, {}],  # integers one user lacks: floats in a frame's column
        [{"size": 3}, {"size": "M"}],  # numbers beside text
        [{"score": float("nan"), "vip": True}, {"score": 2.0, "tags": ["a"]}],
        [{}, {}],
    ],
)
def test_profiles_read_without_a_frame_are_those_a_fit_on_the_frames_reads(
    attributes: list[dict[str, object]],
) -> None:
    texts = ["I hike in winter", None, ""]
    users = [User(f"u{n}", texts[n % 3], a) for n, a in enumerate(attributes)]
    spec, profiles = service_profiles(users)
    dataset = ids_dataset(["i1"], users)
    assert spec == dataset.spec
    want = users_of(dataset)[1]
    assert profiles == want
    assert [type(v) for p in profiles.values() for v in p["attributes"].values()] == [
        type(v) for p in want.values() for v in p["attributes"].values()
    ]


_RESTART = """
import sys
from coldbrew.live.answers import Query
from coldbrew.live.engine import Engine, Serving
from coldbrew.models.query import UserQuery
from coldbrew.store import Store
from coldbrew.text import HashingEncoder
import coldbrew.serve.app
store = Store(sys.argv[1], vector_dtype="int8")
serving = Serving(model="zeroshot", models_dir=sys.argv[2])
encoder = HashingEncoder(int(sys.argv[3]))
graph = sys.argv[1] + ".ivfpq"
engine = Engine(store, encoder, index="ivfpq", serving=serving, graph_path=graph).load()
answer = engine.recommend(Query(UserQuery(user_id="u1"), k=3, explain=False))
engine.close()
print(len(answer), engine.shared, [m for m in ("pandas", "pyarrow") if m in sys.modules])
"""


def test_a_restarted_service_builds_no_frame_and_imports_neither_pandas_nor_pyarrow(
    tmp_path: Path,
) -> None:
    """Started over its stored vectors (building and saving the IVF-PQ index), then again
    over the saved index, the service and a request by a known user's id import neither
    (pyarrow's libraries: ~26 MB resident at a million items)."""
    pytest.importorskip("faiss")
    db = tmp_path / "shop.sqlite"
    items = [
        Item(f"i{n}", f"tent no {n}", f"tent {n % 7}", {"colour": f"c{n % 3}"})
        for n in range(20_000)
    ]
    start(db, items, "int8", "ivfpq").store.close()
    for _ in range(2):  # the start that saves the index, and the restart that reads it
        argv = [sys.executable, "-c", _RESTART, str(db), str(tmp_path / "models"), str(DIM)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split() == ["3", "True", "[]"]
    assert (tmp_path / "shop.sqlite.ivfpq.json").exists()  # the saved index's record
