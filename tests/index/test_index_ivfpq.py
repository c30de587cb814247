"""The compressed index (IVF-PQ over float16 rows) answers like the exact one, and keeps deletes."""

import json
from pathlib import Path

import numpy as np
import pytest

from coldbrew.index.exact import ExactIndex

pytest.importorskip("faiss")

import faiss

from coldbrew.index import graph, make_index
from coldbrew.index.ivfpq import IVFPQIndex, sub_quantizers

DIM = 32


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 40 topics (the shape text embeddings have; random ones do not)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((40, DIM))
    x = centres[rng.integers(40, size=n)] + 0.35 * rng.standard_normal((n, DIM))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def both(n: int = 4000) -> tuple[IVFPQIndex, ExactIndex, list[str]]:
    vectors = clustered(n)
    ids = [f"i{j}" for j in range(n)]
    compact, exact = IVFPQIndex(DIM, exact_below=0, nprobe=8), ExactIndex(DIM)
    compact.add_all(ids, vectors, None)
    exact.add(ids, vectors.astype(np.float16).astype(np.float32))
    return compact, exact, ids


def recall(a: list[list[str]], b: list[list[str]]) -> float:
    return float(np.mean([len(set(x) & set(y)) / max(len(y), 1) for x, y in zip(a, b)]))


def test_search_goes_through_ivfpq_and_finds_what_the_exact_scan_finds() -> None:
    compact, exact, _ = both()
    assert compact.ready and compact.graph_size == 4000
    assert compact.vectors.dtype == np.float16
    queries = clustered(200, seed=1)
    got, scores = compact.search(queries, 10)
    want, _ = exact.search(queries, 10)
    # 0.99-1.0 when measured (rescoring 100 rows from 8 of 63 clusters); the floor leaves room
    # for k-means runs on other machines
    assert recall(got, want) >= 0.9
    assert all(len(row) == 10 for row in got)
    # returned scores are exact inner products of the stored rows, best first
    row = compact.ids.rows(got[0])
    np.testing.assert_allclose(scores[0], compact.row_vectors(row) @ queries[0], rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_removed_replaced_and_excluded_items_never_come_back() -> None:
    compact, _, _ = both()
    query = clustered(1, seed=2)
    top, _ = compact.search(query, 5)
    gone, replaced, excluded = top[0][:3]
    compact.remove([gone])
    compact.add([replaced], -query)  # now the farthest item of all
    result, _ = compact.search(query, 10, exclude=[[excluded]])
    assert gone not in result[0] and replaced not in result[0] and excluded not in result[0]
    assert len(result[0]) == 10
    assert compact.search(-query, 1)[0][0] == [replaced]  # found at its new place
    compact.add([gone], query)  # re-added: back on top
    assert compact.search(query, 1)[0][0] == [gone]


def test_a_rebuild_keeps_training_and_drops_dead_nodes() -> None:
    compact, _, ids = both()
    compact.remove(ids[:3000])
    compact.add(ids[:10], clustered(10, seed=3))  # dead nodes outnumber live: rebuilt
    assert compact.graph_size == len(compact) == 1010
    found, _ = compact.search(clustered(5, seed=4), 5)
    assert all(set(f) <= set(ids[:10]) | set(ids[3000:]) for f in found)


def test_saved_index_is_reused_only_for_the_same_rows(tmp_path: Path) -> None:
    compact, _, ids = both(2000)
    path = tmp_path / "items.ivfpq"
    compact.save_graph(path)
    queries = clustered(20, seed=5)
    want = compact.search(queries, 10)[0]
    vectors = compact.row_vectors(np.arange(len(ids)))
    same = IVFPQIndex(DIM, exact_below=0, nprobe=8)
    assert same.add_all(ids, vectors, path) is True
    assert same.search(queries, 10)[0] == want
    same.add(["new"], queries[:1])  # appended to the lists read from the file
    assert same.search(queries[:1], 1)[0] == [["new"]] and same.graph_size == 2001
    changed = IVFPQIndex(DIM, exact_below=0, nprobe=8)
    assert changed.add_all(ids, -vectors, path) is False  # other vectors: built afresh


def test_memory_and_choice_by_size() -> None:
    compact, _, _ = both()
    float32_bytes = 4000 * DIM * 4
    assert compact.memory_bytes < 0.75 * float32_bytes  # float16 rows + 4-byte codes
    assert sub_quantizers(384) == 48 and sub_quantizers(DIM) == 4
    assert type(make_index("auto", DIM, 1_000_000)).__name__ == "IVFPQIndex"
    assert type(make_index("auto", DIM, 10_000)).__name__ == "HNSWIndex"
    with pytest.raises(ValueError, match="divide"):
        IVFPQIndex(DIM, m=5)


def test_int32_labels_keep_removal_selection_and_search_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The node <-> row labels are int32 (8 MB less at a million items): after replacements
    (new nodes) and removals, the answers read through faiss's int64 results with an
    ``allowed`` subset and exclusions still name the right items; nodes past int32 are refused."""
    compact, exact, ids = both()
    assert compact._label_row.dtype == np.int32 and compact._row_label.dtype == np.int32
    moved = clustered(50, seed=6)
    for index in (compact, exact):
        index.remove(ids[100:200])
        index.add(ids[:50], moved)  # replaced: 50 new nodes, their old ones dead
    assert compact._label_row.dtype == np.int32 and compact._row_label.dtype == np.int32
    assert compact.graph_size == 4050
    queries = clustered(50, seed=7)
    allowed = ids[:2000]
    excluded = [ids[n : n + 3] for n in range(0, 150, 3)]
    got, _ = compact.search(queries, 10, exclude=excluded, allowed=allowed)
    want, _ = exact.search(queries, 10, exclude=excluded, allowed=allowed)
    assert recall(got, want) >= 0.9
    for found, gone in zip(got, excluded):
        assert set(found) <= set(allowed) - set(ids[100:200]) - set(gone)
    # a replaced item is found at its new place, through its new node's label
    assert compact.search(moved[:1], 1)[0][0] == [ids[0]]
    monkeypatch.setattr(graph, "MAX_NODES", compact.graph_size + 1)
    with pytest.raises(OverflowError, match="int32"):
        compact.add(ids[60:62], clustered(2, seed=8))  # two more nodes than int32 would hold


def structure(path: Path) -> Path:
    """The structure file a save at ``path`` wrote: the one its record names."""
    return path.with_name(json.loads(Path(f"{path}.json").read_text())["file"])


def test_lists_sized_before_the_codes_are_added_give_the_very_index_faiss_add_builds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A build assigns the rows to their lists, sizes each empty list, then adds the codes with
    those assignments (``_add_nodes``): the same codes and ids in the same order as faiss's own
    ``add`` in batches, so the same saved bytes and the same answers, after the first build
    (three batches) and after a rebuild that reuses the training; later items still append."""
    monkeypatch.setattr(graph, "CHUNK", 2500)
    vectors, ids = clustered(6000), [f"i{j}" for j in range(6000)]
    queries = clustered(100, seed=9)
    built = {}
    for sized in (True, False):
        if not sized:  # faiss's add, batch by batch, as before
            monkeypatch.setattr(IVFPQIndex, "_add_nodes", graph.GraphIndex._add_nodes)
        index = IVFPQIndex(DIM, exact_below=0, nprobe=8)
        index.add_all(ids, vectors, None)
        first = faiss.serialize_index(index._graph), index.search(queries, 10)[0]
        index.remove(ids[:4000])
        index.add(ids[:500], clustered(500, seed=10))  # dead nodes outnumber live: rebuilt
        assert index.graph_size == len(index) == 2500
        index.add(ids[4000:4010], clustered(10, seed=11))  # appended to the sized lists
        second = faiss.serialize_index(index._graph), index.search(queries, 10)[0]
        index.save_graph(tmp_path / f"{sized}.ivfpq")
        built[sized] = first, second
    for step in (0, 1):
        (sized_bytes, sized_found), (added_bytes, added_found) = (
            built[True][step],
            built[False][step],
        )
        assert np.array_equal(sized_bytes, added_bytes) and sized_found == added_found
    saved = [structure(tmp_path / f"{s}.ivfpq").read_bytes() for s in (True, False)]
    assert saved[0] == saved[1]
