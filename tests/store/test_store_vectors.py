"""Vectors stored compactly (float16; int8 with a per-vector scale); old float32 rows still read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

from sqlalchemy import create_engine, text

from coldbrew.store import Store
from coldbrew.store.codec import decode_rows, encode_rows, round_trip
from coldbrew.store.rows import Int8Rows

DIM = 24


def unit(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(("dtype", "size", "tol"), [("float16", 2, 1e-3), ("int8", 1, 1e-2)])
def test_compact_formats_round_trip_within_their_precision(
    tmp_path: Path, dtype: str, size: int, tol: float
) -> None:
    vectors = unit(50)
    vectors[3] = 0.0  # an all-zero row keeps a zero scale
    store = Store(str(tmp_path / "v.sqlite"), vector_dtype=dtype)
    ids = [f"i{n}" for n in range(50)]
    with store.transaction() as session:
        store.put_vectors(session, "item", "m", ids, vectors)
    back = store.vectors("item", "m")
    got = np.stack([back[i] for i in ids])
    assert got.dtype == np.float32
    assert np.abs(got - vectors).max() < tol
    np.testing.assert_array_equal(got, round_trip(vectors, dtype))  # what the engine keeps
    assert np.all(got[3] == 0.0)
    cosines = np.sum(got * vectors, axis=1)[np.arange(50) != 3]
    assert cosines.min() > 1 - tol
    with store.engine.connect() as connection:
        lengths = connection.execute(text("SELECT DISTINCT length(data), dtype FROM vectors"))
        assert lengths.all() == [(size * DIM + (4 if dtype == "int8" else 0), dtype)]


def test_vector_matrix_reads_in_bulk_in_the_order_asked(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "v.sqlite"), vector_dtype="float16")
    vectors = unit(30)
    with store.transaction() as session:
        store.put_vectors(session, "item", "m", [f"i{n}" for n in range(30)], vectors)
    matrix, found = store.vector_matrix("item", "m", ["i29", "nope", "i0"], dtype=np.float16)
    assert matrix.dtype == np.float16 and matrix.shape == (3, DIM)
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(matrix[0], vectors[29].astype(np.float16))
    assert not matrix[1].any()
    empty, none = store.vector_matrix("item", "other model", ["i0"])
    assert not none.any() and empty.shape[0] == 1


def test_rows_written_before_formats_existed_read_as_float32(tmp_path: Path) -> None:
    """A database at the first schema revision, with a raw float32 vector, upgraded in place."""
    from alembic import command
    from alembic.config import Config

    from coldbrew.store.db import MIGRATIONS

    path = tmp_path / "old.sqlite"
    old = create_engine(f"sqlite:///{path}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with old.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    vector = unit(1)[0]
    with old.begin() as connection:
        connection.execute(
            text("INSERT INTO vectors (kind, owner_id, model, dim, data) VALUES (:k,:o,:m,:d,:b)"),
            {"k": "item", "o": "old", "m": "m", "d": DIM, "b": vector.tobytes()},
        )
    old.dispose()
    store = Store(str(path), vector_dtype="int8")  # migrates; new rows are int8
    with store.transaction() as session:
        store.put_vectors(session, "item", "m", ["new"], vector[None, :])
    back = store.vectors("item", "m")
    np.testing.assert_array_equal(back["old"], vector)  # bit for bit
    assert np.abs(back["new"] - vector).max() < 1e-2
    matrix, found = store.vector_matrix("item", "m", ["old", "new"])
    assert found.all() and matrix.dtype == np.float32


def test_codec_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="bfloat16"):
        encode_rows(unit(1), "bfloat16")
    with pytest.raises(ValueError, match="vector dtype"):
        Store("sqlite://", vector_dtype="float64")
    assert decode_rows([], "int8", DIM).shape == (0, DIM)


def test_int8_views_of_the_same_memory_are_the_same_rows_and_copies_are_compared() -> None:
    rows = Int8Rows.of(np.eye(4, dtype=np.float32))
    assert rows.same(rows[:]) and rows[:2].same(rows[:2])
    other = Int8Rows(rows.codes.copy(), rows.scales.copy())
    assert rows.same(other)
    other.codes[3, 3] = 0
    assert not rows.same(other) and rows.same(other, slice(0, 3))


def test_int8_matrix_holds_the_stored_codes_byte_for_byte_and_quantises_other_formats(
    tmp_path: Path,
) -> None:
    """Int8 rows are copied as stored (a restart serves exactly what was written), never
    decoded and quantised again; rows stored in another format are quantised on the way in."""
    store = Store(str(tmp_path / "v.sqlite"), vector_dtype="int8")
    vectors = unit(20)
    with store.transaction() as session:
        store.put_vectors(session, "item", "m", [f"i{n}" for n in range(20)], vectors)
    half = Store(store.url, vector_dtype="float16")  # the same file, another writer's format
    with half.transaction() as session:
        half.put_vectors(session, "item", "m", ["f0"], unit(1))
    matrix, found = store.vector_matrix("item", "m", ["i3", "nope", "f0", "i0"], dtype=np.int8)
    assert isinstance(matrix, Int8Rows) and found.tolist() == [True, False, True, True]
    stored = Int8Rows.of(vectors)  # the codes and scales put_vectors wrote
    for n, row in ((0, 3), (3, 0)):
        assert matrix.codes[n].tobytes() == stored.codes[row].tobytes()
        assert matrix.scales[n] == stored.scales[row]
    assert not matrix.codes[1].any() and matrix.scales[1] == 0
    expected = Int8Rows.of(unit(1).astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(matrix.codes[2], expected.codes[0])
    assert matrix.take([0, 3]).tobytes() == stored.take([3, 0]).tobytes()
    with pytest.raises(ValueError, match="rows only"):
        matrix.take([0], axis=1)
