"""``models.cfbase.interaction_matrix`` looks its ids up a column at a time (issue 29): the
same matrix and user rows as looking each event up on its own, on the service's datasets (their
ids in Arrow string columns) and on plain object columns."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from coldbrew.data.idmap import IdMap
from coldbrew.data.schema import ITEM_ID, USER_ID, Dataset
from coldbrew.live.records import dataset_from_records
from coldbrew.models.cfbase import interaction_matrix
from coldbrew.store import Interaction, Item, User

USERS = ["u10", "u9", "ü2", "U1", "10", "9", "émile"]
ITEMS = ["i1", "i2", "i10", "ï3", "7"]


def _events(rng: np.random.Generator, count: int) -> list[Interaction]:
    """Likes by every user, repeats included, some on an item no longer in the catalogue."""
    return [
        Interaction(
            f"e{n}",
            str(rng.choice(USERS)),
            str(rng.choice([*ITEMS, "gone"])),
            "like",
            float(n),
        )
        for n in range(count)
    ]


def _one_by_one(dataset: Dataset, item_ids: IdMap) -> tuple[sp.csr_matrix, list[str]]:
    """The matrix and user order built an event at a time, in Python."""
    known = {i: n for n, i in enumerate(item_ids)}
    pairs = [
        (str(u), known[str(i)])
        for u, i in zip(dataset.positives()[USER_ID], dataset.positives()[ITEM_ID])
        if str(i) in known
    ]
    users = sorted({u for u, _ in pairs})
    row = {u: n for n, u in enumerate(users)}
    dense = np.zeros((len(users), len(item_ids)), dtype=np.float32)
    for user, col in pairs:
        dense[row[user], col] = 1.0
    return sp.csr_matrix(dense), users


def _same(dataset: Dataset, item_ids: IdMap) -> None:
    matrix, users = interaction_matrix(dataset, item_ids)
    expected, expected_users = _one_by_one(dataset, item_ids)
    assert list(users) == expected_users
    assert matrix.shape == expected.shape
    assert matrix.dtype == np.float32
    assert (matrix != expected).nnz == 0
    assert set(matrix.data) == {1.0}


def test_the_service_dataset_reads_the_same_matrix() -> None:
    rng = np.random.default_rng(3)
    items = [Item(i, f"title {i}") for i in ITEMS]
    users = [User(u) for u in USERS]
    dataset = dataset_from_records(items, users, _events(rng, 400))
    _same(dataset, IdMap(ITEMS))
    _same(dataset, IdMap(ITEMS[::-1]))  # the catalogue's order, not the events'
    _same(dataset, IdMap(ITEMS[:2]))  # events on items outside the map are left out


def test_the_benchmark_datasets_read_the_same_matrix(tiny_dataset: Dataset) -> None:
    items = IdMap(tiny_dataset.items[ITEM_ID].astype(str))
    _same(tiny_dataset, items)


def test_no_events_on_the_catalogue_is_an_empty_matrix() -> None:
    dataset = dataset_from_records([Item("a", "a")], [User("u")], [])
    matrix, users = interaction_matrix(dataset, IdMap(["a"]))
    assert matrix.shape == (0, 1) and len(users) == 0
    dataset = dataset_from_records(
        [Item("a", "a")], [User("u")], _events(np.random.default_rng(1), 5)
    )
    matrix, users = interaction_matrix(dataset, IdMap(["a"]))  # every event on other items
    assert matrix.shape == (0, 1) and len(users) == 0
