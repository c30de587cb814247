"""The embedding cache encodes each text once and never loses another writer's vectors."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.text.cache import EmbeddingCache, text_key
from coldbrew.text.encoder import HashingEncoder


class Counting(HashingEncoder):
    def __init__(self, dim: int = 16, during: Any = None) -> None:
        super().__init__(dim)
        self.texts: list[str] = []
        self.during = during  # called while encoding: another writer at work meanwhile

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        self.texts += list(texts)
        if self.during is not None:
            self.during()
        return super().encode(texts, **kwargs)


def stored_keys(cache: EmbeddingCache, encoder: HashingEncoder) -> set[str]:
    with np.load(cache._file(encoder, "passage"), allow_pickle=False) as data:
        return set(data["keys"].tolist())


def test_a_text_is_encoded_once_and_read_back_as_encoded(tmp_path: Path) -> None:
    encoder = Counting()
    cache = EmbeddingCache(tmp_path)
    first = cache.encode(encoder, ["a tent", "a lamp", "a tent"])
    again = EmbeddingCache(tmp_path).encode(encoder, ["a lamp", "a tent", "boots"])
    assert sorted(encoder.texts) == ["a lamp", "a tent", "boots"]  # each text once, ever
    np.testing.assert_array_equal(again[:2], first[[1, 0]])
    np.testing.assert_array_equal(first, HashingEncoder(16).encode(["a tent", "a lamp", "a tent"]))
    assert cache.encode(encoder, []).shape == (0, 16)


def test_vectors_another_writer_added_meanwhile_are_kept(tmp_path: Path) -> None:
    other = EmbeddingCache(tmp_path)
    encoder = Counting(during=lambda: other.encode(HashingEncoder(16), ["written meanwhile"]))
    EmbeddingCache(tmp_path).encode(encoder, ["mine"])
    assert stored_keys(other, encoder) == {text_key("mine"), text_key("written meanwhile")}
    assert not list(tmp_path.glob("*.tmp.npz"))  # no temporary file left behind


def _write(directory: str, texts: list[str]) -> None:
    cache = EmbeddingCache(directory)
    for text in texts:  # one write per text: as many chances to race as possible
        cache.encode(HashingEncoder(16), [text])


def test_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    batches = [[f"writer {w} text {n}" for n in range(15)] for w in range(3)]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write, args=(str(tmp_path), b)) for b in batches]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert all(w.exitcode == 0 for w in workers)
    expected = {text_key(t) for batch in batches for t in batch}
    assert stored_keys(EmbeddingCache(tmp_path), HashingEncoder(16)) == expected
