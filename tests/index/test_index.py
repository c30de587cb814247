from __future__ import annotations

import numpy as np
import pytest

from coldbrew.index import ExactIndex, top_k


def unit(*rows: list[float]) -> np.ndarray:
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_top_k_orders_best_first_and_breaks_ties_by_position() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9]])
    assert top_k(scores, 3).tolist() == [[1, 3, 2]]
    assert top_k(scores, 10).tolist() == [[1, 3, 2, 0]]
    assert top_k(scores, 0).shape == (1, 0)


def test_search_add_remove_and_filters() -> None:
    index = ExactIndex(dim=2)
    index.add(["a", "b", "c"], unit([1, 0], [0, 1], [1, 1]))
    ids, scores = index.search(unit([1, 0.1]), k=2)
    assert ids == [["a", "c"]]
    assert scores[0, 0] > scores[0, 1]
    index.remove(["a"])
    assert index.search(unit([1, 0.1]), k=1)[0] == [["c"]]
    assert len(index) == 2 and not index.contains("a")
    index.add(["a"], unit([0, 1]))  # re-adding overwrites and reactivates
    assert index.search(unit([0, 1]), k=1, exclude=[["b"]])[0] == [["a"]]
    assert index.search(unit([1, 0]), k=3, allowed=["b", "zzz"])[0] == [["b"]]


def test_search_returns_fewer_when_few_are_eligible() -> None:
    index = ExactIndex(dim=2)
    index.add(["a", "b"], unit([1, 0], [0, 1]))
    ids, scores = index.search(unit([1, 0], [0, 1]), k=5, exclude=[["a"], []])
    assert ids == [["b"], ["b", "a"]]
    assert np.isinf(scores[0, 1:]).all()


def test_grows_past_initial_capacity() -> None:
    index = ExactIndex(dim=3)
    vectors = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    for i in range(100):
        index.add([f"i{i}"], vectors[i : i + 1])
    assert len(index) == 100
    np.testing.assert_allclose(index.vectors, vectors)


def test_wrong_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        ExactIndex(dim=4).add(["a"], np.zeros((1, 3)))
