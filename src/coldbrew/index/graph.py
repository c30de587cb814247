"""What faiss-backed indexes share: labelled graph nodes, live bitmaps, saved graphs.

The rows stay in memory as in :class:`~coldbrew.index.exact.ExactIndex` (liked-item vectors and
explanations read them, and found items are rescored exactly from them); a faiss structure over
the same rows (an HNSW graph, an IVF-PQ index) answers large searches without a full scan. Such
structures cannot change a node in place, so each node carries a *label*: re-adding an id with a
new vector appends a node with a fresh label, and a bitmap of live labels (row active, label
current) is handed to faiss as a search-time selector, together with the query's excluded ids,
so a removed, replaced or excluded item is never returned and never takes one of the ``k``
places. When dead nodes outnumber live ones the structure is rebuilt from the live rows.

Small catalogues (below ``exact_below`` items) and narrow ``allowed`` subsets are searched
exactly: a scan is cheap there, and approximate search degrades when most nodes are filtered out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from coldbrew.index import persist
from coldbrew.index.exact import ExactIndex, top_k
from coldbrew.store.rows import as_stored

LABELS = np.int32
"""The node <-> row label arrays' type (4 bytes a node and a row, 8 MB less at a million items
than ``int64``): faiss never reads them (its own ids are the nodes ``0..n-1``, the searches'
selector a bitmap); its ``int64`` search results index them as they are. Rows are below
:data:`~coldbrew.data.idmap.MAX_ROWS` by construction, nodes checked as they are appended."""
MAX_NODES = int(np.iinfo(LABELS).max)
CHUNK = 100_000
"""Rows converted to float32 at a time (a bounded copy of a compact matrix)."""


def chunks(rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` in slices of :data:`CHUNK`."""
    return [rows[first : first + CHUNK] for first in range(0, len(rows), CHUNK)]


def faiss_module() -> Any:
    """The ``faiss`` module, or an ``ImportError`` naming the extra that installs it."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("approximate indexes need faiss: pip install 'coldbrew[ann]'") from exc
    return faiss


class GraphIndex(ExactIndex):
    """Exact below ``exact_below`` active items, a faiss structure above; one results contract.

    Subclasses say how the structure is made (:meth:`_new_graph`), searched
    (:meth:`_search_params`, :meth:`_fetch`) and emptied (:meth:`_empty_graph`), and may need it
    trained before nodes are added (:meth:`_train`).
    """

    def __init__(self, dim: int, *, exact_below: int, narrow_fraction: float = 0.2) -> None:
        super().__init__(dim)
        self.exact_below = exact_below
        self.narrow_fraction = narrow_fraction
        self._graph = self._new_graph()
        self._label_row = np.zeros(0, dtype=LABELS)  # graph node -> row
        self._row_label = np.full(0, -1, dtype=LABELS)  # row -> its current node (or -1)
        self._live = np.zeros(0, dtype=bool)  # graph node -> may be returned

    # ---- what a subclass decides ------------------------------------------------------------
    def _new_graph(self) -> Any:
        """A fresh, empty faiss index."""
        raise NotImplementedError

    def _empty_graph(self) -> Any:
        """An empty structure to rebuild into (a trained one may keep its training)."""
        return self._new_graph()

    def _train(self, rows: np.ndarray) -> bool:
        """Make the structure ready to take nodes, from the vectors of ``rows``; whether it is."""
        return True

    def _search_params(self, selector: Any, k: int) -> Any:
        """faiss search parameters with ``selector`` for a top-``k`` search."""
        raise NotImplementedError

    def _fetch(self, k: int) -> int:
        """How many nodes to ask faiss for, to keep the exact top ``k`` after rescoring."""
        return k

    def _config(self) -> list[Any]:
        """The settings a saved structure must have been built with to be reused."""
        return [self.dim]

    def _loaded(self, graph: Any) -> None:
        """Settings to put back on a structure read from disk."""

    # ---- state ----------------------------------------------------------------------------
    @property
    def quick(self) -> bool:
        """Always: small catalogues are scanned, large ones searched through the structure."""
        return True

    @property
    def graph_size(self) -> int:
        """Nodes in the structure, dead ones included."""
        return int(self._graph.ntotal)

    @property
    def ready(self) -> bool:
        """Whether the structure can answer (it holds the live rows)."""
        return bool(self._graph.is_trained) and self.graph_size > 0

    # ---- writes ---------------------------------------------------------------------------
    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        stored = as_stored(vectors, self.storage)
        previous = {i: self._vectors[self.ids.row(i)].copy() for i in ids if self.contains(i)}
        super().add(ids, vectors)
        self._grow_rows()
        fresh = []
        for position, item_id in enumerate(ids):
            row = self.ids.row(item_id)
            before = previous.get(item_id)
            node = self._row_label[row]
            if before is not None and node >= 0 and np.array_equal(before, stored[position]):
                self._live[node] = True  # unchanged: keep its node
                continue
            fresh.append(row)
        fresh = list(dict.fromkeys(fresh))
        if not self._graph.is_trained:
            if len(self) >= self.exact_below:
                self.compact()  # enough rows to train on now
            else:
                self._kill(np.asarray(fresh, dtype=np.int64))
            return
        if fresh:
            self._append_nodes(np.asarray(fresh, dtype=np.int64))
        if self.graph_size - int(self._live.sum()) > max(len(self), 1_000):
            self.compact()

    def add_all(
        self, ids: Sequence[str], vectors: np.ndarray, graph_path: str | Path | None
    ) -> bool:
        """Reuse the structure saved at ``graph_path`` if it matches these ids and vectors, else
        build it once (not node by node, as :meth:`add` would)."""
        ExactIndex.add(self, ids, vectors)
        self._grow_rows()
        if graph_path is not None:
            return self.load_graph(graph_path)
        self.compact()
        return False

    def wants_graph(self, n_items: int) -> bool:
        """From ``exact_below`` items on, searches go through the structure."""
        return n_items >= self.exact_below

    def _grow_rows(self) -> None:
        n = len(self.ids)
        if n > len(self._row_label):
            grown = np.full(max(n, 2 * len(self._row_label), 16), -1, dtype=LABELS)
            grown[: len(self._row_label)] = self._row_label
            self._row_label = grown

    def _kill(self, rows: np.ndarray) -> None:
        """The current nodes of ``rows`` may no longer be returned."""
        old = self._row_label[rows]
        self._live[old[old >= 0]] = False
        self._row_label[rows] = -1

    def _append_nodes(self, rows: np.ndarray) -> None:
        self._kill(rows)
        start = self.graph_size
        if start + len(rows) > MAX_NODES:
            raise OverflowError(
                f"{start + len(rows):,} nodes: at most {MAX_NODES:,} (int32 labels)"
            )
        self._add_nodes(rows)
        labels = np.arange(start, start + len(rows), dtype=LABELS)
        self._label_row = np.concatenate([self._label_row, rows.astype(LABELS)])
        self._live = np.concatenate([self._live, np.ones(len(rows), dtype=bool)])
        self._row_label[rows] = labels

    def _add_nodes(self, rows: np.ndarray) -> None:
        """Append the vectors of ``rows`` to the structure, in order (a subclass may prepare
        it for them first)."""
        for chunk in chunks(rows):
            self._graph.add(self._floats(chunk))  # one float32 copy alive at a time

    def _floats(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` as a float32 copy (of a compact matrix)."""
        return np.ascontiguousarray(self._vectors[rows], dtype=np.float32)

    def remove(self, ids: Iterable[str]) -> None:
        rows = self.ids.rows(ids, skip_unknown=True)
        super().remove(self.ids.ids(rows))
        labels = self._row_label[rows]
        self._live[labels[labels >= 0]] = False

    def compact(self) -> None:
        """Rebuild the structure from the active rows, dropping dead nodes (training it first
        when it needs training and there are enough rows)."""
        self._graph = self._empty_graph()
        self._label_row = np.zeros(0, dtype=LABELS)
        self._live = np.zeros(0, dtype=bool)
        self._row_label[:] = -1
        rows = np.flatnonzero(self.active)
        if len(rows) and (self._graph.is_trained or self._train(rows)):
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
        if n_active < self.exact_below or narrow or k <= 0 or not self.ready:
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
        faiss = faiss_module()
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(bitmap)
        fetch = min(self._fetch(k), max(self.graph_size, 1))
        params = self._search_params(selector, fetch)
        _scores, labels = self._graph.search(query[None, :], fetch, params=params)
        found = labels[0] >= 0
        rows = self._label_row[labels[0][found]]
        # faiss's scores are approximate (compressed codes) or differ from numpy's in the last
        # bits: rescore exactly from the rows so scores agree with the exact index
        exact = self.dot(query[None, :], rows)[0]
        order = top_k(exact[None, :], min(k, len(rows)))[0]
        return self.ids.ids(rows[order]), exact[order]

    # ---- persistence ----------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A hash of the active ids, their vectors and the settings: a saved structure is
        reused only on a match."""
        digest = hashlib.sha256()
        rows = np.flatnonzero(self.active)
        digest.update("\n".join(self.ids.ids(rows)).encode())
        for chunk in chunks(rows):  # the rows as held (int8: codes and scales, undecoded)
            digest.update(self._vectors.take(chunk, axis=0).tobytes())
        digest.update(json.dumps([type(self).__name__, *self._config()]).encode())
        return digest.hexdigest()

    def save_graph(self, path: str | Path) -> None:
        """Write the structure and its labels (as ids) for a fast restart, each file whole and
        the structure's named by its content (:mod:`coldbrew.index.persist`)."""
        faiss = faiss_module()
        # dead nodes may belong to items deleted since: only live nodes keep their id
        labels = [
            self.ids.id(int(r)) if live else None for r, live in zip(self._label_row, self._live)
        ]

        def write(handle: IO[bytes]) -> None:
            faiss.write_index(self._graph, faiss.PyCallbackIOWriter(handle.write))

        persist.save(Path(path), self.fingerprint(), labels, write)

    def load_graph(self, path: str | Path) -> bool:
        """Use a saved structure if it was saved for exactly these ids, vectors and settings;
        else build one. Returns whether the saved one was used."""
        found = persist.load(Path(path), self.fingerprint, faiss_module().read_index)
        if found is not None:
            self._adopt(*found)
            return True
        self.compact()
        return False

    def _adopt(self, graph: Any, labels: list[str | None]) -> None:
        self._graph = graph
        self._loaded(graph)
        self._live = np.asarray([i is not None for i in labels], dtype=bool)
        self._label_row = np.asarray(
            [self.ids.row(i) if i is not None else 0 for i in labels], dtype=LABELS
        )
        self._row_label[:] = -1
        live = np.flatnonzero(self._live)
        self._row_label[self._label_row[live]] = live
