"""Nearest-neighbour search over item vectors: exact (numpy) and approximate (faiss HNSW)."""

from __future__ import annotations

from coldbrew.index.base import Index
from coldbrew.index.exact import ExactIndex, top_k

INDEX_KINDS = ("auto", "exact", "hnsw")


def make_index(kind: str, dim: int) -> Index:
    """``exact``, ``hnsw`` (needs faiss), or ``auto``: HNSW when faiss is installed.

    The HNSW index still scans exactly below 20,000 items, so ``auto`` changes nothing for small
    catalogues.
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index {kind!r}: expected one of {', '.join(INDEX_KINDS)}")
    if kind == "exact":
        return ExactIndex(dim)
    try:
        from coldbrew.index.hnsw import HNSWIndex

        return HNSWIndex(dim)
    except ImportError:
        if kind == "hnsw":
            raise
        return ExactIndex(dim)


__all__ = ["INDEX_KINDS", "ExactIndex", "Index", "make_index", "top_k"]
