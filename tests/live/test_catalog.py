"""The item table in columns reads back what was written, through writes, rewrites and deletes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from coldbrew.live.catalog import DIGEST, ItemTable, TextIds, short_key
from coldbrew.live.records import item_text
from coldbrew.store import Item
from coldbrew.text.cache import text_digest, text_key


def an_item(item_id: str, version: int) -> Item:
    title = f"chaise {item_id} v{version}" if version % 3 else f"椅子 {item_id} v{version}"
    return Item(item_id, title, "", {"n": version, "tags": ["a", item_id]})


def test_same_items_as_a_dict_through_random_writes() -> None:
    rng = np.random.default_rng(2)
    table, plain = ItemTable(), {}
    first: list[str] = []  # the order ids were first written in: the table's order
    for step in range(3000):
        item_id = f"i{int(rng.integers(400))}"
        if rng.random() < 0.75:
            item = an_item(item_id, step)
            table[item_id] = item
            plain[item_id] = item
            if item_id not in first:
                first.append(item_id)
        elif item_id in plain:
            del table[item_id]
            del plain[item_id]
        else:
            with pytest.raises(KeyError):
                del table[item_id]
        if step == 1500:
            table.trim()
    assert len(table) == len(plain)
    assert list(table) == [i for i in first if i in plain]
    assert all(table[i] == item for i, item in plain.items())
    assert all(table.digest(i) == text_digest(item_text(plain[i])) for i in plain)
    assert dict(table.text_keys) == {i: text_key(item_text(item)) for i, item in plain.items()}
    assert "i401" not in table and 7 not in table
    with pytest.raises(KeyError):
        table["i401"]
    rows, keys = table.short_key_rows()
    ids = [table.id_at(row) for row in rows.tolist()]
    assert ids == list(table)
    assert keys.tolist() == [short_key(table.digest(i)) for i in ids]
    cjk = [i for i in table if not plain[i].title.isascii()]
    assert sorted(table.non_ascii()) == sorted(cjk) and cjk


def test_a_rewritten_item_keeps_its_place_and_a_deleted_one_comes_back_at_it() -> None:
    table = ItemTable()
    for n in range(3):
        table[f"i{n}"] = an_item(f"i{n}", 1)
    table["i0"] = an_item("i0", 3)  # rewritten: its new record is read
    del table["i1"]
    assert list(table) == ["i0", "i2"] and len(table) == 2 and table["i0"].title.startswith("椅子")
    assert list(table.non_ascii()) == ["i0"]
    table["i1"] = an_item("i1", 2)
    assert list(table) == ["i0", "i1", "i2"] and table["i1"] == an_item("i1", 2)
    with pytest.raises(ValueError, match="stored under"):
        table["i9"] = an_item("i8", 1)


def test_records_sit_in_one_buffer_and_text_ids_read_them_in_one_go() -> None:
    table = ItemTable()
    items = [an_item(f"i{n}", 1 + n % 2) for n in range(5000)]
    for item in items:
        table[item.item_id] = item
    table.trim()
    assert len(table._ends) == 5000 and table._ends[-1] == len(table._buffer)
    assert len(table._buffer) == sum(DIGEST + len(_packed(i)) for i in items)
    assert not table._rewritten
    text_ids = TextIds()
    text_ids.rebuild(table)
    for item in items[::97]:
        assert text_ids.get(short_key(text_digest(item_text(item)))) == item.item_id
    assert ItemTable().short_key_rows()[1].tolist() == [] and list(ItemTable().non_ascii()) == []


def test_text_ids_hold_table_rows_that_still_name_their_items_after_writes() -> None:
    table = ItemTable()
    items = [an_item(f"i{n}", 1 + n % 2) for n in range(50)]
    for item in items:
        table[item.item_id] = item
    text_ids = TextIds()
    text_ids.rebuild(table)
    assert text_ids._rows.dtype == np.int32 and len(text_ids._rows) == 50
    table["new"] = an_item("new", 3)  # the table grows and changes after the rebuild
    del table["i7"]
    table["i8"] = an_item("i8", 3)
    for item in items:  # the key still finds the id that had the text; the caller checks it
        assert text_ids.get(short_key(text_digest(item_text(item)))) == item.item_id
    assert text_ids.get(short_key(text_digest(item_text(an_item("new", 3))))) is None
    text_ids.rebuild(table)
    assert text_ids.get(short_key(table.digest("new"))) == "new"
    assert text_ids.get(short_key(text_digest(item_text(items[7])))) is None


def _packed(item: Item) -> bytes:
    fields = [item.title, item.description, item.attributes]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
