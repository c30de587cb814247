"""Approximate inner-product search over a faiss HNSW graph, an :class:`~coldbrew.index.base.Index`.

The float32 rows stay in memory; the graph (with its own float32 copy) answers a search in about
a millisecond instead of a full scan. Labels, live bitmaps, rebuilds and saved graphs are
:class:`~coldbrew.index.graph.GraphIndex`'s.
"""

from __future__ import annotations

from typing import Any

from coldbrew.index.graph import GraphIndex, faiss_module


class HNSWIndex(GraphIndex):
    """Exact below ``exact_below`` active items, faiss HNSW above; same results contract.

    ``m`` and ``ef_construction`` shape the graph (more: better recall, slower build);
    ``ef_search`` is the search beam (raised to ``k`` when ``k`` is larger).
    """

    def __init__(
        self,
        dim: int,
        *,
        m: int = 32,
        ef_construction: int = 128,
        ef_search: int = 256,
        exact_below: int = 20_000,
        narrow_fraction: float = 0.2,
    ) -> None:
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        super().__init__(dim, exact_below=exact_below, narrow_fraction=narrow_fraction)

    def _new_graph(self) -> Any:
        faiss = faiss_module()
        graph = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.ef_construction
        return graph

    def _search_params(self, selector: Any, k: int) -> Any:
        return faiss_module().SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k))

    def _config(self) -> list[Any]:
        return [self.dim, self.m, self.ef_construction]

    def _loaded(self, graph: Any) -> None:
        graph.hnsw.efConstruction = self.ef_construction
