"""Shared fixtures: a tiny catalogue with a planted structure, built in memory."""

from __future__ import annotations

import os
import tempfile

# implicit wants a single-threaded OpenBLAS; it must be set before numpy loads the library
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# exported ONNX models (and other caches) outside the checkout, shared by the servers tests start
os.environ.setdefault(
    "COLDBREW_CACHE", os.path.join(tempfile.gettempdir(), f"coldbrew-test-cache-{os.getuid()}")
)

import pandas as pd
import pytest

from coldbrew.data.schema import Dataset, DatasetSpec

ITEMS = [
    ("jacket", "Lightweight spring jacket", "clothing"),
    ("parka", "Insulated winter parka with hood", "clothing"),
    ("shirt", "Linen summer shirt", "clothing"),
    ("boots", "Waterproof hiking boots", "shoes"),
    ("runners", "Trail running shoes", "shoes"),
    ("keyboard", "Mechanical keyboard with brown switches", "electronics"),
    ("mouse", "Wireless gaming mouse", "electronics"),
    ("headphones", "Noise cancelling headphones", "electronics"),
    ("tent", "Ultralight camping tent for two", "outdoor"),
    ("bottle", "Insulated steel water bottle", "outdoor"),
    ("skillet", "Cast iron skillet pan", "kitchen"),
    ("coffee", "Pour over coffee set", "kitchen"),
]

# two taste groups: outdoor people and gamers, each with a clear history
INTERACTIONS = [
    ("alice", "boots", 5.0, 1.0),
    ("alice", "tent", 5.0, 2.0),
    ("alice", "bottle", 4.0, 3.0),
    ("bob", "keyboard", 5.0, 1.0),
    ("bob", "mouse", 5.0, 2.0),
    ("bob", "headphones", 4.0, 3.0),
    ("carol", "tent", 4.0, 1.0),
    ("carol", "runners", 5.0, 2.0),
    ("dave", "mouse", 4.0, 1.0),
    ("dave", "keyboard", 2.0, 2.0),
    ("erin", "skillet", 5.0, 1.0),
    ("erin", "coffee", 5.0, 2.0),
]

USERS = [
    ("alice", "25-34", "engineer", "I love the outdoors"),
    ("bob", "18-24", "student", ""),
    ("carol", "35-44", "teacher", ""),
    ("dave", "18-24", "student", ""),
    ("erin", "45-54", "chef", "cooking at home"),
]


@pytest.fixture
def tiny_dataset() -> Dataset:
    items = pd.DataFrame(ITEMS, columns=["item_id", "title", "category"])
    inter = pd.DataFrame(INTERACTIONS, columns=["user_id", "item_id", "value", "timestamp"])
    users = pd.DataFrame(USERS, columns=["user_id", "age", "occupation", "about"])
    spec = DatasetSpec(
        name="tiny",
        item_text=("title",),
        item_attributes=("category",),
        user_text=("about",),
        user_attributes=("age", "occupation"),
        positive_threshold=4.0,
    )
    return Dataset(spec, items, inter, users)


def _benchmark(name: str) -> Dataset:
    """A real benchmark dataset (``$COLDBREW_DATA`` or ../shared/data); skipped without it."""
    from coldbrew.data.benchmarks import LOADERS, DatasetNotFoundError, data_root

    try:
        return LOADERS[name](data_root())
    except DatasetNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    """The real ml-100k; the test is skipped without it."""
    return _benchmark("ml-100k")


@pytest.fixture(scope="session")
def retail() -> Dataset:
    """The real online-retail (UCI Online Retail); the test is skipped without it."""
    return _benchmark("online-retail")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files that hold slow tests first, every file's tests in their own order: the suite
    runs one worker per core, each file whole on one worker (``--dist loadfile``), so the long
    files start at once instead of ending the run on one worker while the others wait."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: files stay whole and in order
