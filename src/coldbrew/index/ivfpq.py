"""A compressed index for large catalogues: faiss IVF-PQ over compact rows, rescored exactly.

At a million 384-d items a float32 matrix is 1.5 GB and an HNSW graph over it as much again. This
index keeps the rows as float16 (half the memory) or int8 with one scale a row (a quarter; what
the service uses) — what liked-item vectors, explanations and the rescoring read — and searches
a faiss ``IndexIVFPQ``: items are grouped into ``nlist`` clusters, each stored as ``m`` one-byte
product-quantisation codes (48 bytes for 384-d, 32x smaller than float32). A search visits the
``nprobe`` nearest clusters, ranks their codes approximately, and rescores the best
``rerank * k`` rows from the compact matrix, so the returned scores are the inner products with
the rows as held and the approximation only decides *which* rows are looked at. Deletes,
updates and per-query exclusions are selector bitmaps, as for every
:class:`~coldbrew.index.graph.GraphIndex`; a rebuild keeps the trained clusters and codebooks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from coldbrew.index.graph import GraphIndex, chunks, faiss_module

ROW_FORMATS = ("float16", "int8")


def sub_quantizers(dim: int, per: int = 8) -> int:
    """The largest divisor of ``dim`` not above ``dim // per`` (PQ needs ``dim % m == 0``)."""
    target = max(1, dim // per)
    return max(m for m in range(1, target + 1) if dim % m == 0)


class IVFPQIndex(GraphIndex):
    """Exact below ``exact_below`` active items, IVF-PQ above; compact rows; same contract.

    Parameters
    ----------
    dim
        Vector length.
    nlist
        Clusters (``None``: about ``sqrt(n)`` of the rows at training time, 16 to 4,096).
    m
        PQ sub-quantisers (``None``: one per 8 dimensions, a divisor of ``dim``).
    nbits
        Bits per sub-quantiser code (8: 256 centroids each).
    nprobe
        Clusters visited per search.
    rerank
        Rows rescored exactly per wanted item, for small ``k`` (at least 100 in all; at most
        ``k + 200``: a candidate search for hundreds of items needs no four-fold margin).
    exact_below
        Active items below which every search is a scan (and nothing is trained).
    train_rows
        At most this many rows (a seeded sample) train the clusters and codebooks.
    rows
        How the rows are held: ``float16``, or ``int8`` with one scale a row (half again;
        :class:`~coldbrew.store.rows.Int8Rows`, the database's int8 format).
    """

    storage: Any = np.float16

    def __init__(
        self,
        dim: int,
        *,
        nlist: int | None = None,
        m: int | None = None,
        nbits: int = 8,
        nprobe: int = 64,
        rerank: int = 4,
        exact_below: int = 20_000,
        narrow_fraction: float = 0.2,
        train_rows: int = 65_536,
        seed: int = 0,
        rows: str = "float16",
    ) -> None:
        if rows not in ROW_FORMATS:
            raise ValueError(f"rows={rows!r}: expected one of {', '.join(ROW_FORMATS)}")
        self.storage = np.int8 if rows == "int8" else np.float16
        self.nlist, self.nbits, self.nprobe, self.rerank = nlist, nbits, nprobe, rerank
        self.m = m or sub_quantizers(dim)
        if dim % self.m:
            raise ValueError(f"m={self.m} must divide the dimension {dim}")
        self.train_rows, self.seed = train_rows, seed
        self._trained_nlist = nlist or 16
        super().__init__(dim, exact_below=exact_below, narrow_fraction=narrow_fraction)

    def _new_graph(self) -> Any:
        faiss = faiss_module()
        quantizer = faiss.IndexFlatIP(self.dim)
        graph = faiss.IndexIVFPQ(
            quantizer, self.dim, self._trained_nlist, self.m, self.nbits, faiss.METRIC_INNER_PRODUCT
        )
        graph.nprobe = self.nprobe
        self._quantizer = quantizer  # keep the Python wrapper alive with the index
        return graph

    def _empty_graph(self) -> Any:
        if self._graph.is_trained:
            self._graph.reset()  # keeps the clusters and codebooks
            return self._graph
        return self._new_graph()

    def _train(self, rows: np.ndarray) -> bool:
        """Train clusters and codebooks on a sample of ``rows``; not with too few rows for the
        codebooks (``2 ** nbits`` each) or below ``exact_below`` (searches scan there)."""
        if len(rows) < max(self.exact_below, 2**self.nbits, 1):
            return False
        if self.nlist is None:
            self._trained_nlist = int(np.clip(np.sqrt(len(rows)), 16, 4096))
        self._graph = self._new_graph()
        rng = np.random.default_rng(self.seed)
        if len(rows) > self.train_rows:
            rows = np.sort(rng.choice(rows, self.train_rows, replace=False))
        sample = np.ascontiguousarray(self._vectors[rows], dtype=np.float32)
        self._graph.cp.seed = self._graph.pq.cp.seed = self.seed
        self._graph.train(sample)
        return True

    def _add_nodes(self, rows: np.ndarray) -> None:
        """Append the vectors of ``rows``, each empty inverted list first sized for exactly
        what it gets.

        faiss's ``add`` appends a batch's codes and ids to each list's ``std::vector``, which
        grows by doubling, in the heaps of the OpenMP threads that append them: at a million
        items (1,000 lists, 10 batches) each list's buffers ended up to 1.6 times what they
        hold, and what the growth freed stayed resident in those threads' heaps (``malloc_trim``
        does not shrink them). So the rows are assigned to their lists first (the coarse
        quantiser's ``assign``, as ``add`` does it), each list that starts empty is sized from
        this thread, and the codes are added with those assignments (``add_core``: the same
        encoding, ids and order as ``add``); the assignments cost 8 bytes a row meanwhile."""
        faiss = faiss_module()
        quantizer = self._graph.quantizer
        lists = [quantizer.assign(self._floats(chunk), 1).ravel() for chunk in chunks(rows)]
        invlists = faiss.downcast_InvertedLists(self._graph.invlists)
        sizes = np.bincount(np.concatenate(lists), minlength=invlists.nlist)
        for n in np.flatnonzero(sizes):
            if invlists.list_size(int(n)) == 0:  # from empty, std::vector sizes exactly
                invlists.resize(int(n), int(sizes[n]))
                invlists.resize(int(n), 0)  # the capacity stays
        for chunk, assigned in zip(chunks(rows), lists):
            self._add_assigned(self._floats(chunk), assigned)  # one float32 copy at a time

    def _add_assigned(self, x: np.ndarray, assigned: np.ndarray) -> None:
        """Add ``x``'s codes to the lists ``assigned`` (faiss's ``add`` after its ``assign``)."""
        faiss = faiss_module()
        assigned = np.ascontiguousarray(assigned, dtype=np.int64)
        self._graph.add_core(len(x), faiss.swig_ptr(x), None, faiss.swig_ptr(assigned))

    def _search_params(self, selector: Any, k: int) -> Any:
        return faiss_module().SearchParametersIVF(sel=selector, nprobe=self.nprobe)

    def _fetch(self, k: int) -> int:
        return max(min(self.rerank * k, k + 200), 100)

    def _config(self) -> list[Any]:
        return [self.dim, self.nlist, self.m, self.nbits, self.train_rows, self.seed]

    def _loaded(self, graph: Any) -> None:
        graph.nprobe = self.nprobe
        self._trained_nlist = int(graph.nlist)

    @property
    def memory_bytes(self) -> int:
        """Approximate bytes held: the rows, codes and their ids, the cluster centres."""
        codes = self.graph_size * (self._graph.code_size + 8)
        centres = self._trained_nlist * self.dim * 4
        return int(self._vectors.nbytes + codes + centres)
