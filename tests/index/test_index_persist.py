"""Saved index structures shared by several writers: each record names the structure saved with
its labels, old files are swept, and the layout before this one is still read."""

from __future__ import annotations

import json
import os
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

import faiss

from coldbrew.index import persist
from coldbrew.index.hnsw import HNSWIndex

DIM = 16


def catalogue(prefix: str, n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return [f"{prefix}{j}" for j in range(n)], vectors / np.linalg.norm(vectors, axis=1)[:, None]


def built(prefix: str, n: int = 300, seed: int = 0) -> HNSWIndex:
    index = HNSWIndex(DIM, exact_below=0)
    index.add_all(*catalogue(prefix, n, seed), None)
    return index


def restart(prefix: str, path: Path, n: int = 300, seed: int = 0) -> bool:
    """Start an index over ``built(prefix, n, seed)``'s items from ``path``: whether the saved
    structure was reused."""
    return HNSWIndex(DIM, exact_below=0).add_all(*catalogue(prefix, n, seed), path)


def test_writers_sharing_a_path_never_leave_one_labels_beside_another_structure(
    tmp_path: Path,
) -> None:
    """Two writers (replicas of two catalogues of one size) save to one path in a loop while a
    reader loads it: every load that matches a catalogue gets that catalogue's labels and a
    structure holding that catalogue's vectors; the last writer's save is the one reused."""
    path = tmp_path / "shared.hnsw"
    a, b = built("a", seed=1), built("b", seed=2)
    vectors = {x.fingerprint(): x for x in (a, b)}
    mismatches: list[str] = []
    stop = threading.Event()

    def write(index: HNSWIndex) -> None:
        for _ in range(25):
            index.save_graph(path)

    def holds(index: HNSWIndex, structure: faiss.Index, labels: list[str | None]) -> bool:
        nodes = [0, len(labels) // 2, len(labels) - 1]
        want = index.vectors[index.ids.rows([str(labels[n]) for n in nodes])]
        return bool(np.allclose([structure.reconstruct(n) for n in nodes], want))

    def read() -> None:
        while not stop.is_set():
            for fingerprint, index in vectors.items():
                found = persist.load(path, partial(str, fingerprint), faiss.read_index)
                if found is not None and not holds(index, *found):
                    mismatches.append(fingerprint)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(index,)) for index in (a, b)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    stop.set()
    reader.join(timeout=60)
    assert not mismatches
    assert not list(tmp_path.glob("*.tmp"))  # every temporary file was renamed or removed
    assert len(persist.structures(path)) <= 2  # one a catalogue: an unchanged save reuses its file
    b.save_graph(path)  # the last save wins; the other catalogue builds its own at its start
    assert restart("b", path, seed=2) is True
    assert restart("a", path, seed=1) is False


def test_a_save_sweeps_old_structures_and_dead_writers_files_but_not_fresh_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "items.hnsw"
    index = built("i")
    index.save_graph(path)
    (first,) = persist.structures(path)
    index.save_graph(path)  # nothing changed: the same file, only the record rewritten
    assert persist.structures(path) == [first]
    orphan, writing = tmp_path / "items.hnsw.json.x1.tmp", tmp_path / "items.hnsw.abc.tmp"
    orphan.write_text("a writer that died")
    writing.write_text("a writer at work")
    hour_ago = time.time() - persist.ORPHAN_SECONDS - 5
    os.utime(orphan, (hour_ago, hour_ago))

    index.remove(["i7"])  # a new structure; the old one is young: another writer may name it
    index.save_graph(path)
    assert len(persist.structures(path)) == 2
    minute_ago = time.time() - persist.STALE_SECONDS - 5
    for old in persist.structures(path):
        os.utime(old, (minute_ago, minute_ago))
    index.remove(["i8"])
    index.save_graph(path)
    (last,) = persist.structures(path)  # both earlier ones swept
    assert json.loads(Path(f"{path}.json").read_text())["file"] == last.name
    assert {oct(p.stat().st_mode & 0o777) for p in (last, Path(f"{path}.json"))} == {"0o644"}
    assert not orphan.exists() and writing.exists()


def test_the_single_file_layout_before_this_one_is_read_then_replaced(tmp_path: Path) -> None:
    """Before records named their structure, the structure was saved at the path itself."""
    path = tmp_path / "items.hnsw"
    index = built("i")
    labels = [index.ids.id(int(r)) for r in index._label_row]
    faiss.write_index(index._graph, str(path))
    meta = {"fingerprint": index.fingerprint(), "labels": labels}
    Path(f"{path}.json").write_text(json.dumps(meta))
    restarted = HNSWIndex(DIM, exact_below=0)
    assert restarted.add_all(*catalogue("i", 300, 0), path) is True
    restarted.save_graph(path)
    assert not path.exists() and len(persist.structures(path)) == 1
    assert restart("i", path) is True


def test_a_record_naming_a_missing_or_broken_structure_means_a_build(tmp_path: Path) -> None:
    path = tmp_path / "items.hnsw"
    index = built("i")
    index.save_graph(path)
    (structure,) = persist.structures(path)
    structure.write_bytes(b"not an index")
    assert restart("i", path) is False
    structure.unlink()
    assert restart("i", path) is False
    Path(f"{path}.json").write_text("{not json")
    assert restart("i", path) is False
