"""One contract, run over every :class:`~coldbrew.index.Index` implementation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coldbrew.index import ExactIndex, Index

DIM = 8
N = 40


def _hnsw(**kwargs: int) -> Callable[[], Index]:
    def make() -> Index:
        hnsw = pytest.importorskip("coldbrew.index.hnsw", reason="needs faiss: coldbrew[ann]")
        index: Index = hnsw.HNSWIndex(DIM, **kwargs)
        return index

    return make


def _ivfpq(**kwargs: Any) -> Callable[[], Index]:
    def make() -> Index:
        ivfpq = pytest.importorskip("coldbrew.index.ivfpq", reason="needs faiss: coldbrew[ann]")
        index: Index = ivfpq.IVFPQIndex(DIM, nbits=4, **kwargs)
        return index

    return make


IMPLEMENTATIONS = {
    "exact": lambda: ExactIndex(DIM),
    "hnsw-graph": _hnsw(exact_below=0),  # every search through the graph
    "hnsw-scan": _hnsw(),  # below its threshold: scans
    "ivfpq-graph": _ivfpq(exact_below=0),  # float16 rows; IVF-PQ once 16 rows can train it
    "ivfpq-scan": _ivfpq(),
    "ivfpq-int8-graph": _ivfpq(exact_below=0, rows="int8"),  # int8 rows, one scale each
    "ivfpq-int8-scan": _ivfpq(rows="int8"),
}


@pytest.fixture(params=list(IMPLEMENTATIONS))
def make(request: pytest.FixtureRequest) -> Callable[[], Index]:
    factory: Callable[[], Index] = IMPLEMENTATIONS[request.param]
    return factory


def data(seed: int = 0) -> tuple[list[str], np.ndarray]:
    x = np.random.default_rng(seed).standard_normal((N, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # values float16 and int8 (one scale a row) both hold exactly, so a compact index stores
    # these very vectors: multiples of 1/128 with a largest magnitude of 127/128 in every row
    codes = np.rint(127 * x / np.abs(x).max(axis=1, keepdims=True))
    return [f"i{j}" for j in range(N)], (codes / 128).astype(np.float32)


def brute(vectors: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> list[str]:
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return [ids[j] for j in order]


def test_is_an_index_and_starts_empty(make: Callable[[], Index]) -> None:
    index = make()
    assert isinstance(index, Index)
    assert index.dim == DIM and len(index) == 0 and len(index.ids) == 0
    assert index.vectors.shape == (0, DIM)
    assert isinstance(index.quick, bool)
    assert isinstance(index.wants_graph(N), bool)
    with pytest.raises(ValueError, match="shape"):
        index.add(["a"], np.zeros((1, DIM + 1)))


def test_add_search_exclude_allowed(make: Callable[[], Index]) -> None:
    index = make()
    ids, vectors = data()
    index.add(ids, vectors)
    assert len(index) == N and all(index.contains(i) for i in ids)
    assert not index.contains("unknown")
    np.testing.assert_array_equal(index.vectors[index.ids.rows(ids)], vectors)

    queries = vectors[:3] + 0.1
    found, scores = index.search(queries, 5)
    assert found == [brute(vectors, ids, q, 5) for q in queries]
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
    np.testing.assert_allclose(scores[0], vectors[index.ids.rows(found[0])] @ queries[0], rtol=1e-6)
    assert index.search(queries[0], 5)[0] == found[:1]  # one query as a 1-D vector

    excluded, _ = index.search(queries[:2], 5, exclude=[found[0][:2], []])
    assert excluded[0] == brute(vectors, ids, queries[0], 7)[2:] and excluded[1] == found[1]
    allowed, _ = index.search(queries[:1], 5, allowed=["i3", "i7", "nope"])
    assert sorted(allowed[0]) == ["i3", "i7"]


def test_fewer_eligible_than_k_pads_with_minus_infinity(make: Callable[[], Index]) -> None:
    index = make()
    ids, vectors = data()
    index.add(ids[:3], vectors[:3])
    found, scores = index.search(vectors[:1], 5, exclude=[[ids[0]]])
    assert len(found[0]) == 2 and scores.shape[1] <= 5
    assert np.isfinite(scores[0, :2]).all() and np.isneginf(scores[0, 2:]).all()


def test_remove_and_re_add(make: Callable[[], Index]) -> None:
    index = make()
    ids, vectors = data()
    index.add(ids, vectors)
    first = index.search(vectors[:1], 1)[0][0][0]
    assert first == ids[0]
    index.remove([first, "never-added"])
    assert not index.contains(first) and len(index) == N - 1
    assert len(index.ids) == N  # the row stays
    assert first not in index.search(vectors[:1], N)[0][0]
    index.add([first], -vectors[:1])  # re-adding overwrites and reactivates
    assert index.contains(first) and len(index) == N
    assert index.search(vectors[:1], N)[0][0][-1] == first
    np.testing.assert_array_equal(index.vectors[index.ids.row(first)], -vectors[0])


def test_add_all_fills_and_a_saved_graph_is_reused_if_any(
    make: Callable[[], Index], tmp_path: Path
) -> None:
    ids, vectors = data()
    built = make()
    assert built.add_all(ids, vectors, None) is False  # nothing saved to reuse
    assert len(built) == N
    queries = vectors[:4] + 0.1
    want = built.search(queries, 5)[0]
    assert want == [brute(vectors, ids, q, 5) for q in queries]

    path = tmp_path / "graph"
    built.save_graph(path)  # an index without a graph writes nothing
    again = make()
    assert again.add_all(ids, vectors, path) is Path(f"{path}.json").exists()
    assert len(again) == N and again.search(queries, 5)[0] == want


@pytest.mark.parametrize(
    ("kind", "small", "large"),
    [
        ("exact", False, False),
        ("hnsw-graph", True, True),
        ("hnsw-scan", False, True),
        ("ivfpq-graph", True, True),
        ("ivfpq-scan", False, True),
    ],
)
def test_only_a_graph_search_wants_its_graph_saved(kind: str, small: bool, large: bool) -> None:
    index = IMPLEMENTATIONS[kind]()
    assert index.wants_graph(N) is small
    assert index.wants_graph(20_000) is large  # HNSWIndex's default exact_below
