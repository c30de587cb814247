"""Nearest-neighbour search over item vectors: exact (numpy), approximate (faiss HNSW, IVF-PQ)."""

from __future__ import annotations

from coldbrew.index.base import Index
from coldbrew.index.exact import ExactIndex, top_k

INDEX_KINDS = ("auto", "exact", "hnsw", "ivfpq")
COMPRESS_FROM = 250_000
"""From this many items on, ``auto`` picks the compressed IVF-PQ index over int8 rows (an HNSW
graph and float32 rows cost ~3 KB an item at 384 dimensions; IVF-PQ and int8 rows ~0.45 KB)."""


def make_index(kind: str, dim: int, n_items: int = 0, rows: str = "int8") -> Index:
    """``exact``, ``hnsw`` or ``ivfpq`` (both need faiss), or ``auto``: IVF-PQ for catalogues
    of :data:`COMPRESS_FROM` items or more (``n_items``: the size at start-up), HNSW below, when
    faiss is installed; exact otherwise.

    Both faiss indexes still scan exactly below 20,000 items, so ``auto`` changes nothing for
    small catalogues. ``rows``: how IVF-PQ holds its rows, ``int8`` (one scale a row: at a
    million 384-d items 0.37 GB instead of float16's 0.73 GB, served recall@10 0.97-0.99 in
    benchmarks/README.md) or ``float16``.
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index {kind!r}: expected one of {', '.join(INDEX_KINDS)}")
    if kind == "exact":
        return ExactIndex(dim)
    if kind == "auto":
        kind = "ivfpq" if n_items >= COMPRESS_FROM else "hnsw"
        try:
            return make_index(kind, dim, rows=rows)
        except ImportError:
            return ExactIndex(dim)
    if kind == "ivfpq":
        from coldbrew.index.ivfpq import IVFPQIndex

        return IVFPQIndex(dim, rows=rows)
    from coldbrew.index.hnsw import HNSWIndex

    return HNSWIndex(dim)


__all__ = ["COMPRESS_FROM", "INDEX_KINDS", "ExactIndex", "Index", "make_index", "top_k"]
