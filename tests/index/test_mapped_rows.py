"""int8 rows held in a file-backed mapping: the same searches and rows as in memory, writes and
growth included, and no file left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coldbrew.index.exact import ExactIndex
from coldbrew.store.rows import Int8Rows, mapped

DIM = 16


class Int8Exact(ExactIndex):
    storage = np.int8


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def same_search(a: ExactIndex, b: ExactIndex, queries: np.ndarray) -> None:
    (ids_a, scores_a), (ids_b, scores_b) = a.search(queries, 10), b.search(queries, 10)
    assert ids_a == ids_b
    np.testing.assert_array_equal(scores_a, scores_b)


def test_mapped_rows_read_and_write_as_in_memory_and_leave_no_file(tmp_path: Path) -> None:
    rows = Int8Rows.of(unit_rows(50))
    held = mapped(rows, tmp_path)
    assert isinstance(held.codes, np.memmap) and held.same(rows)
    assert list(tmp_path.iterdir()) == []  # unlinked at once: it goes with the mapping
    fresh = unit_rows(1, seed=1)[0]
    held[7] = fresh
    np.testing.assert_allclose(held[[7]][0], fresh, atol=0.01)
    assert held.same(rows, slice(8, None)) and not held.same(rows)


def test_no_rows_are_no_mapping(tmp_path: Path) -> None:
    empty = Int8Rows.zeros(0, DIM)
    assert mapped(empty, tmp_path) is empty


def test_an_index_over_mapped_rows_searches_and_grows_as_before(tmp_path: Path) -> None:
    vectors = unit_rows(300)
    ids = [f"i{n}" for n in range(300)]
    plain, held = Int8Exact(DIM), Int8Exact(DIM)
    for index in (plain, held):
        index.add(ids, vectors)
    assert held.map_rows(tmp_path)
    queries = unit_rows(5, seed=2)
    same_search(held, plain, queries)
    more = unit_rows(200, seed=3)  # past the spare capacity: the rows grow, still mapped
    for index in (plain, held):
        index.add([f"n{n}" for n in range(200)], more)
    assert isinstance(held.vectors, Int8Rows) and isinstance(held.vectors.codes, np.memmap)
    assert held.vectors.same(plain.vectors)
    same_search(held, plain, queries)


def test_float_rows_stay_in_memory(tmp_path: Path) -> None:
    index = ExactIndex(DIM)
    index.add(["a"], unit_rows(1))
    assert not index.map_rows(tmp_path)
    assert not isinstance(index.vectors, np.memmap)
    with pytest.raises(AttributeError):
        _ = index.vectors.codes  # type: ignore[attr-defined]


def test_rows_stay_in_memory_where_the_folder_cannot_be_written(tmp_path: Path) -> None:
    index = Int8Exact(DIM)
    index.add(["a", "b"], unit_rows(2))
    assert not index.map_rows(tmp_path / "no such folder")
    assert isinstance(index.vectors, Int8Rows) and not isinstance(index.vectors.codes, np.memmap)
