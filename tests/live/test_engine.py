"""A started engine's item table and index hold one id map, and stay consistent through writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldbrew.live.engine import Engine, Serving
from coldbrew.store import Item, Store
from coldbrew.text import HashingEncoder

DIM = 32


def start(db: Path, items: list[Item], index: str) -> Engine:
    store = Store(str(db), vector_dtype="int8")
    encoder = HashingEncoder(DIM)
    if items:
        with store.transaction() as session:
            store.register_model(session, encoder.name, encoder.config(), DIM)
            store.upsert_items(session, items)
    serving = Serving(model="zeroshot", models_dir=str(db.parent / "models"))
    return Engine(store, encoder, index=index, serving=serving).load()


def answers(engine: Engine, ids: list[str]) -> dict[str, tuple[list[float], set[str]]]:
    """The scores of each id's five most similar items, and the items scored above the fifth
    (the last place may go to any of several tied items, told apart by row)."""
    out = {}
    for item_id in ids:
        found = [(round(r.score, 5), r.item.item_id) for r in engine.similar_items(item_id, k=5)]
        last = found[-1][0]
        out[item_id] = ([s for s, _ in found], {i for s, i in found if s > last})
    return out


@pytest.mark.parametrize("index", ["exact", "ivfpq"])
def test_table_and_index_share_one_id_map_that_later_writes_keep_right(
    tmp_path: Path, index: str
) -> None:
    if index == "ivfpq":
        pytest.importorskip("faiss")
    items = [Item(f"i{n}", f"tent no {n} for hiking", f"tent {n % 7}") for n in range(60)]
    db = tmp_path / "shop.sqlite"
    engine = start(db, items, index)
    assert engine.items._keys._ids is engine.index.ids._ids  # one list of a million ids
    engine.upsert_items([Item("new", "a red lamp", "for the desk"), Item("i3", "a blue lamp", "")])
    engine.delete_item("i5")
    engine.upsert_items([Item("later", "a green lamp", "for reading")])
    assert engine.items._keys._ids is not engine.index.ids._ids  # the first write copied
    current = [i for i in [f"i{n}" for n in range(60)] + ["new", "later"] if i != "i5"]
    assert list(engine.items) == current and len(engine.index) == len(current)
    assert all(engine.index.contains(i) for i in current) and not engine.index.contains("i5")
    assert engine.items["i3"].title == "a blue lamp" and engine.items["later"].title.endswith("p")
    assert "i5" not in engine.items and "new" in engine.items
    assert engine.items._keys.rows(current).tolist() == engine.index.ids.rows(current).tolist()
    before = answers(engine, ["new", "later", "i3", "i10"])
    engine.close()
    again = start(db, [], index)  # the same store read again (a saved graph reused, if any)
    assert list(again.items) == current
    assert again.items._keys._ids is again.index.ids._ids
    assert answers(again, ["new", "later", "i3", "i10"]) == before
    assert before["new"][0][0] > before["new"][0][-1]  # lamps above tents
    again.close()
    engine.store.close()
    again.store.close()
