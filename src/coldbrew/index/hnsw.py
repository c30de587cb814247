"""Approximate inner-product search (faiss HNSW), an :class:`~coldbrew.index.base.Index`.

The float32 rows stay in memory exactly as in :class:`ExactIndex` (liked-item vectors and
explanations read them); a faiss HNSW graph over the same rows answers large searches in about a
millisecond instead of a full scan. HNSW cannot change or delete a node, so each graph node
carries a *label*: re-adding an id with a new vector appends a node with a fresh label, and a
bitmap of live labels (row active, label current) is handed to faiss as a search-time selector,
together with the query's excluded ids, so a removed, replaced or excluded item is never
returned and never takes one of the ``k`` places. When dead nodes outnumber live ones the graph
is rebuilt from the live rows.

Small catalogues (below ``exact_below`` items) and narrow ``allowed`` subsets are searched
exactly: a scan is cheap there, and graph search degrades when most nodes are filtered out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.index.exact import ExactIndex, top_k


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the HNSW index needs faiss: pip install 'coldbrew[ann]'") from exc
    return faiss


class HNSWIndex(ExactIndex):
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
        super().__init__(dim)
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self.exact_below = exact_below
        self.narrow_fraction = narrow_fraction
        self._graph = self._new_graph()
        self._label_row = np.zeros(0, dtype=np.int64)  # graph node -> row
        self._row_label = np.full(0, -1, dtype=np.int64)  # row -> its current node (or -1)
        self._live = np.zeros(0, dtype=bool)  # graph node -> may be returned

    def _new_graph(self) -> Any:
        faiss = _faiss()
        graph = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.ef_construction
        return graph

    @property
    def quick(self) -> bool:
        """Always: small catalogues are scanned, large ones searched through the graph."""
        return True

    @property
    def graph_size(self) -> int:
        """Nodes in the graph, dead ones included."""
        return int(self._graph.ntotal)

    # ---- writes ---------------------------------------------------------------------------
    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        previous = {i: self._vectors[self.ids.row(i)].copy() for i in ids if self.contains(i)}
        super().add(ids, vectors)
        self._grow_rows()
        fresh = []
        for position, item_id in enumerate(ids):
            row = self.ids.row(item_id)
            before = previous.get(item_id)
            node = self._row_label[row]
            if before is not None and node >= 0 and np.array_equal(before, vectors[position]):
                self._live[node] = True  # unchanged: keep its node
                continue
            fresh.append(row)
        fresh = list(dict.fromkeys(fresh))
        if fresh:
            self._append_nodes(np.asarray(fresh, dtype=np.int64))
        if self.graph_size - int(self._live.sum()) > max(len(self), 1_000):
            self.compact()

    def add_all(
        self, ids: Sequence[str], vectors: np.ndarray, graph_path: str | Path | None
    ) -> bool:
        """Reuse the graph saved at ``graph_path`` if it matches these ids and vectors, else build
        it once (not node by node, as :meth:`add` would)."""
        ExactIndex.add(self, ids, vectors)
        self._grow_rows()
        if graph_path is not None:
            return self.load_graph(graph_path)
        self.compact()
        return False

    def wants_graph(self, n_items: int) -> bool:
        """From ``exact_below`` items on, searches go through the graph."""
        return n_items >= self.exact_below

    def _grow_rows(self) -> None:
        n = len(self.ids)
        if n > len(self._row_label):
            grown = np.full(max(n, 2 * len(self._row_label), 16), -1, dtype=np.int64)
            grown[: len(self._row_label)] = self._row_label
            self._row_label = grown

    def _append_nodes(self, rows: np.ndarray) -> None:
        old = self._row_label[rows]
        self._live[old[old >= 0]] = False
        start = self.graph_size
        self._graph.add(np.ascontiguousarray(self._vectors[rows]))
        labels = np.arange(start, start + len(rows), dtype=np.int64)
        self._label_row = np.concatenate([self._label_row, rows])
        self._live = np.concatenate([self._live, np.ones(len(rows), dtype=bool)])
        self._row_label[rows] = labels

    def remove(self, ids: Iterable[str]) -> None:
        rows = self.ids.rows(ids, skip_unknown=True)
        super().remove(self.ids.ids(rows))
        labels = self._row_label[rows]
        self._live[labels[labels >= 0]] = False

    def compact(self) -> None:
        """Rebuild the graph from the active rows, dropping dead nodes."""
        self._graph = self._new_graph()
        self._label_row = np.zeros(0, dtype=np.int64)
        self._live = np.zeros(0, dtype=bool)
        self._row_label[:] = -1
        rows = np.flatnonzero(self.active)
        if len(rows):
            self._append_nodes(rows)

    # ---- search ---------------------------------------------------------------------------
    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude: Sequence[Iterable[str]] | None = None,
        allowed: Iterable[str] | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        n_active = len(self)
        allowed_rows = None
        if allowed is not None:
            allowed_rows = self.ids.rows(allowed, skip_unknown=True)
            allowed_rows = allowed_rows[self.active[allowed_rows]]
        narrow = allowed_rows is not None and len(allowed_rows) < self.narrow_fraction * n_active
        if n_active < self.exact_below or narrow or k <= 0:
            return super().search(queries, k, exclude=exclude, allowed=allowed)
        if allowed_rows is not None:
            base = np.zeros_like(self._live)
            labels = self._row_label[allowed_rows]
            base[labels[labels >= 0]] = True
            base &= self._live
        else:
            base = self._live
        out_ids: list[list[str]] = []
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        for q, query in enumerate(queries):
            mask = base
            if exclude is not None:
                rows = self.ids.rows(exclude[q], skip_unknown=True)
                if len(rows):
                    mask = base.copy()
                    labels = self._row_label[rows]
                    mask[labels[labels >= 0]] = False
            ids, scores = self._search_one(query, k, mask)
            out_ids.append(ids)
            out_scores[q, : len(scores)] = scores
        return out_ids, out_scores

    def _search_one(self, query: np.ndarray, k: int, mask: np.ndarray) -> tuple[list[str], Any]:
        faiss = _faiss()
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(bitmap)
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k))
        _scores, labels = self._graph.search(query[None, :], k, params=params)
        found = labels[0] >= 0
        rows = self._label_row[labels[0][found]]
        # the graph's float32 sums may differ from numpy's in the last bits: rescore exactly so
        # scores agree with the exact index and with each other
        exact = self._vectors[rows] @ query
        order = top_k(exact[None, :], len(rows))[0]
        return self.ids.ids(rows[order]), exact[order]

    # ---- persistence ----------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A hash of the active ids and their vectors: a saved graph is reused only on a match."""
        digest = hashlib.sha256()
        rows = np.flatnonzero(self.active)
        digest.update("\n".join(self.ids.ids(rows)).encode())
        digest.update(np.ascontiguousarray(self._vectors[rows]).tobytes())
        digest.update(json.dumps([self.dim, self.m, self.ef_construction]).encode())
        return digest.hexdigest()

    def save_graph(self, path: str | Path) -> None:
        """Write the graph and its labels (as ids) next to each other, for a fast restart."""
        faiss = _faiss()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # dead nodes may belong to items deleted since: only live nodes keep their id
        labels = [
            self.ids.id(int(r)) if live else None for r, live in zip(self._label_row, self._live)
        ]
        meta = {"fingerprint": self.fingerprint(), "labels": labels}
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._graph, str(tmp))
        tmp.replace(path)
        path.with_name(path.name + ".json").write_text(json.dumps(meta))

    def load_graph(self, path: str | Path) -> bool:
        """Use a saved graph if it was saved for exactly these ids and vectors; else build one.

        Returns whether the saved graph was used.
        """
        faiss = _faiss()
        path = Path(path)
        meta_path = path.with_name(path.name + ".json")
        if path.exists() and meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                graph = faiss.read_index(str(path))
            except (OSError, ValueError, RuntimeError):
                meta, graph = None, None
            if (
                meta is not None
                and meta.get("fingerprint") == self.fingerprint()
                and graph.ntotal == len(meta["labels"])
            ):
                labels = meta["labels"]
                self._graph = graph
                self._graph.hnsw.efConstruction = self.ef_construction
                self._live = np.asarray([i is not None for i in labels], dtype=bool)
                self._label_row = np.asarray(
                    [self.ids.row(i) if i is not None else 0 for i in labels], dtype=np.int64
                )
                self._row_label[:] = -1
                live = np.flatnonzero(self._live)
                self._row_label[self._label_row[live]] = live
                return True
        self.compact()
        return False
