"""The compact id map answers as a dict of ids to rows would, across merges and collisions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from coldbrew.data import idmap
from coldbrew.data.idmap import IdMap


class Colliding(IdMap):
    """Ids share 4,096 hashes: rows are told apart by comparing ids."""

    @staticmethod
    def _hash(key: object) -> int:
        return hash(key) % 4096


def reference(batches: list[list[str]]) -> tuple[dict[str, int], list[list[int]]]:
    rows: dict[str, int] = {}
    answers = []
    for batch in batches:
        answers.append([rows.setdefault(i, len(rows)) for i in batch])
    return rows, answers


@pytest.mark.parametrize("kind", [IdMap, Colliding])
def test_rows_match_a_dict_across_merges(kind: type[IdMap]) -> None:
    rng = np.random.default_rng(0)
    batches = [[f"i{n}" for n in rng.integers(0, 20_000, size)] for size in (5000, 3, 7000, 1)]
    batches.append(["i1", "i1", "new", "new"])  # the same new id twice in one batch
    expected, answers = reference(batches)
    ids = kind()
    for batch, answer in zip(batches, answers):
        assert ids.add(batch).tolist() == answer
    assert len(ids._recent) < len(expected)  # most ids went to the sorted arrays
    assert len(ids) == len(expected)
    assert list(ids) == list(expected) == ids.ids()
    for key, row in expected.items():
        assert ids.row(key) == row and key in ids and ids.id(row) == key
    probe = ["i5", "nope", "new", "i19999"]
    known = [k for k in probe if k in expected]
    assert ids.rows(probe, skip_unknown=True).tolist() == [expected[k] for k in known]
    assert "nope" not in ids and 5 not in ids
    with pytest.raises(KeyError, match="nope"):
        ids.rows(probe)
    with pytest.raises(KeyError, match="nope"):
        ids.row("nope")


def test_a_million_ids_in_one_add_are_merged_and_found() -> None:
    keys = [f"i{n}" for n in range(1_000_000)]
    ids = IdMap(keys)
    assert not ids._recent and len(ids._hashes) == len(keys)
    sample = keys[::997]
    assert ids.rows(sample).tolist() == list(range(0, 1_000_000, 997))
    assert ids.add(["i999999", "fresh"]).tolist() == [999_999, 1_000_000]
    assert ids._recent == {"fresh": 1_000_000}  # below the merge size: asked first
    assert ids.row("fresh") == 1_000_000


@pytest.mark.parametrize("kind", [IdMap, Colliding])
def test_a_large_batch_of_new_ids_goes_straight_to_the_arrays(kind: type[IdMap]) -> None:
    ids = kind(["a", "b"])
    batch = ["b", *(f"n{n}" for n in range(idmap.MERGE_AT)), "a"]
    rows = ids.add(batch)
    assert rows.tolist() == [1, *range(2, idmap.MERGE_AT + 2), 0]
    assert not ids._recent and len(ids._hashes) == len(ids) == idmap.MERGE_AT + 2
    assert ids.rows(batch).tolist() == rows.tolist()
    assert ids.ids(rows[:3]) == ["b", "n0", "n1"]


def test_merge_size_grows_with_the_map() -> None:
    ids = IdMap(f"a{n}" for n in range(idmap.MERGE_AT))
    assert not ids._recent
    ids.add(f"b{n}" for n in range(idmap.MERGE_AT - 1))
    assert len(ids._recent) == idmap.MERGE_AT - 1
    assert ids.rows(["b0", "a0"]).tolist() == [idmap.MERGE_AT, 0]


def test_pickle_and_same_order() -> None:
    ids = IdMap(["x", "y"])
    ids.add(["z"])
    back = pickle.loads(pickle.dumps(ids))
    assert back.same_order(ids) and back.rows(["z", "x"]).tolist() == [2, 0]
    assert not IdMap(["y", "x", "z"]).same_order(ids)
    assert ids.to_array().tolist() == ["x", "y", "z"]


@pytest.mark.parametrize("grown", [3, idmap.MERGE_AT + 5])  # the small dict, and a merge
def test_an_adopted_map_shares_until_either_side_writes_then_both_stay_right(grown: int) -> None:
    ids = [f"i{n}" for n in range(5000)]
    first, second = IdMap(ids), IdMap(ids)
    assert second.adopt(first) and second._ids is first._ids and second._hashes is first._hashes
    new = [f"n{n}" for n in range(grown)]
    rows = second.add(new)  # the adopter grows: the other keeps its own ids
    assert second._ids is not first._ids and len(first) == 5000 and "n0" not in first
    assert rows.tolist() == list(range(5000, 5000 + grown)) and second.rows(ids).tolist() == list(
        range(5000)
    )
    assert first.append("only-first") == 5000 and "only-first" not in second  # the other grows
    assert second.id(5000) == "n0" and first.id(5000) == "only-first"
    assert first.rows(ids).tolist() == second.rows(ids).tolist() == list(range(5000))
    assert pickle.loads(pickle.dumps(second)).same_order(second)


def test_a_map_adopts_only_the_same_ids_in_the_same_order() -> None:
    first = IdMap(["a", "b", "c"])
    assert not IdMap(["a", "c", "b"]).adopt(first) and not IdMap(["a", "b"]).adopt(first)
    assert not first.adopt(first) and not Colliding(["a", "b", "c"]).adopt(first)


def test_rows_stay_below_the_int32_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are int32 here and in the faiss indexes' labels: an id past the bound is refused
    (one at a time and in a batch), and the map is left as it was."""
    monkeypatch.setattr(idmap, "MAX_ROWS", 3)
    ids = IdMap(["a", "b"])
    assert ids.append("c") == 2
    with pytest.raises(OverflowError, match="at most 3 rows"):
        ids.append("d")
    with pytest.raises(OverflowError, match="at most 3 rows"):
        ids.add(["a", "e"])
    assert list(ids) == ["a", "b", "c"] and ids.add(["c", "a"]).tolist() == [2, 0]
