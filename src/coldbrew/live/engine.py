"""The serving engine: the store, the served model and the item index kept consistent.

The engine serves a :class:`~coldbrew.models.Recommender` — the hybrid the service trains itself
(:mod:`coldbrew.live.refit`), a saved model, or, before anything is learned, the zero-shot
language model — and builds each request's :class:`~coldbrew.models.UserQuery` from the live
state: the user's words, attributes and current history. So a user's new feedback moves their
next answer in every part at once (CF parts fold the user in from that history), a new item is
scorable by every part that reads text as soon as its upsert returns, and deletes and forget-user
reach the served model's state immediately.

:class:`Engine` is a small facade: the state is :class:`~coldbrew.live.state.Live`, and each job
done on it is a module of its own: writes (:mod:`~coldbrew.live.writes`: encode, commit, then
memory), query assembly and filters (:mod:`~coldbrew.live.queries`), ranking and candidates
(:mod:`~coldbrew.live.ranking`, :mod:`~coldbrew.live.candidates`), the served model's versions,
refits and swaps (:mod:`~coldbrew.live.served`), similar items (:mod:`~coldbrew.live.similar`)
and status (:mod:`~coldbrew.live.status`). At start-up the whole state is rebuilt from the
database and the latest good model version, reusing the stored vectors, so a restart answers
as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from coldbrew.index import make_index
from coldbrew.live import ranking, served, similar, status, writes
from coldbrew.live.answers import Answer, Query, Recommendation
from coldbrew.live.catalog import release_free_memory
from coldbrew.live.errors import NotFoundError
from coldbrew.live.queries import user_query
from coldbrew.live.records import EVENTS, POSITIVE_EVENTS, item_text
from coldbrew.live.serving import Serving
from coldbrew.live.state import INLINE_ITEMS, RAY_BULK_TEXTS, Live
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.candidates import CandidateRecommender
from coldbrew.store import Interaction, Item, User
from coldbrew.store.rows import empty_rows
from coldbrew.text.encoder import Encoder

log = logging.getLogger("coldbrew.live.engine")

__all__ = [
    "EVENTS",
    "INLINE_ITEMS",
    "POSITIVE_EVENTS",
    "RAY_BULK_TEXTS",
    "Answer",
    "Engine",
    "Query",
    "Recommendation",
    "Serving",
]


class Engine(Live):
    """The running recommender: the live state (:class:`~coldbrew.live.state.Live`) and a small
    facade over the jobs done on it, each in its own module: writes, query assembly, ranking,
    the served model's versions and refits, similar items and status."""

    # ---- start-up and close ---------------------------------------------------------------
    def load(self) -> Engine:
        """Rebuild memory from the store and the latest model version; encode (and store) only
        items without a vector yet. A replica follows the change log from where it stood
        before this read (changes that land meanwhile are applied twice, to the same end)."""
        if self.fleet is not None:
            self.fleet.mark()
        with self.store.transaction() as session:
            self.store.register_model(
                session, self.encoder_name, self.encoder.config(), self.encoder.dim
            )
        for item in self.store.iter_items():  # one at a time into compact records
            self.remember_item(item, keyed=False)
        self.items.trim()  # the records' columns without spare capacity
        self.text_ids.rebuild(self.items)  # the text keys as one sorted array
        self.freeze_attributes()  # the items by attribute value as sorted tuples
        ids = list(self.items)
        if self.index_kind is not None and not len(self.index):  # now the size is known
            self.index = make_index(self.index_kind, self.encoder.dim, len(ids))
        vectors, found = self.store.vector_matrix(
            "item", self.encoder_name, ids, dtype=self.index.vectors.dtype
        )
        missing = np.flatnonzero(~found)
        if len(missing):
            if vectors.shape[1] != self.encoder.dim:
                vectors = empty_rows(len(ids), self.encoder.dim, vectors.dtype)
            texts = [item_text(self.items[ids[n]]) for n in missing]
            fresh = self.stored_form(self.encoder.inner.encode(texts, kind="passage"))
            with self.store.transaction() as session:
                self.store.put_vectors(
                    session, "item", self.encoder_name, [ids[n] for n in missing], fresh
                )
            vectors[missing] = fresh
        built = None
        if ids:
            if not len(self.index):
                graph = self.graph_file(len(ids))
                if not self.index.add_all(ids, vectors, graph) and graph:
                    built = graph  # built now: saved once the service answers
            else:
                self.index.add(ids, vectors)
            self.items.share_keys(self.index.ids)  # one id map for both, if in the same order
        del vectors
        self.load_users()
        self.versions.clean()
        served.load_model(self)
        release_free_memory()  # start-up's transient rows and frames, back to the system
        self.ready = True
        if built:
            self.save_built(built)
        if self.refitter is not None:
            self.refitter.start_timer()
        if self.fleet is not None:
            self.fleet.start(self)
        return self

    def save_built(self, graph: str) -> None:
        """Save the structure start-up built, from a thread, once the service answers (a crash
        before :meth:`close` keeps it; a million items' save is seconds the start need not
        wait for). Searches go on meanwhile; writes wait for it. Not a daemon: a process that
        exits without :meth:`close` waits for the save rather than losing it."""

        def save() -> None:
            try:
                with self.lock.read():
                    if self.ready:  # a close that came first saves it itself
                        self.index.save_graph(graph)
            except (OSError, RuntimeError) as exc:  # faiss's write errors are RuntimeErrors;
                # the service answers on, and the next start builds the index again
                log.warning("could not save the index built at start-up to %s: %s", graph, exc)
            release_free_memory()  # the save's labels and buffers, back to the system

        self.saver = threading.Thread(target=save, name="coldbrew-save-index")
        self.saver.start()

    def graph_file(self, n_items: int) -> str | None:
        """Where to keep the graph: only catalogues big enough to be searched by graph."""
        return self.graph_path if self.index.wants_graph(n_items) else None

    def close(self) -> None:
        """Stop answering and refitting; save the HNSW graph (if any) for the next start."""
        self.ready = False
        if self.refitter is not None:
            self.refitter.stop()
        if self.fleet is not None:
            self.fleet.stop()
        if self.saver is not None:
            self.saver.join()
        with self.lock.write():
            graph = self.graph_file(len(self.index))
            if graph:
                self.index.save_graph(graph)

    def sample_texts(self, n: int) -> list[str]:
        """Title and description of up to ``n`` items spread evenly over the catalogue."""
        with self.lock.read():
            ids = list(self.items)
            step = max(1, len(ids) // n)
            sample = (self.items[i] for i in ids[::step])
            return [f"{item.title} {item.description}" for item in sample]

    def get_user(self, user_id: str) -> tuple[User, list[Interaction]]:
        with self.lock.read():
            state = self.users.get(user_id)
            if state is None:
                raise NotFoundError("user", user_id)
            return state.user, state.history()

    # ---- writes (coldbrew.live.writes) ----------------------------------------------------
    def upsert_items(self, items: Sequence[Item]) -> None:
        """Add or replace items (:func:`~coldbrew.live.writes.upsert_items`)."""
        writes.upsert_items(self, items)

    def delete_item(self, item_id: str) -> None:
        """Delete an item everywhere."""
        writes.delete_item(self, item_id)

    def refresh_items(self, item_ids: Sequence[str]) -> None:
        """Bring these items up to the database (:func:`~coldbrew.live.writes.refresh_items`)."""
        writes.refresh_items(self, item_ids)

    def reencode(self, encoder: Encoder) -> None:
        """Serve ``encoder`` instead of the current one (:func:`~coldbrew.live.writes.reencode`)."""
        writes.reencode(self, encoder)

    def upsert_users(self, users: Sequence[User]) -> None:
        """Add or replace users' text and attributes; their interactions stay."""
        writes.upsert_users(self, users)

    def forget_user(self, user_id: str) -> None:
        """Remove the user everywhere, now (:func:`~coldbrew.live.writes.forget_user`)."""
        writes.forget_user(self, user_id)

    def refresh_users(self, user_ids: Sequence[str]) -> None:
        """Bring these users up to the database (:func:`~coldbrew.live.writes.refresh_users`)."""
        writes.refresh_users(self, user_ids)

    def add_interactions(self, interactions: Sequence[Interaction]) -> None:
        """Store interactions (:func:`~coldbrew.live.writes.add_interactions`)."""
        writes.add_interactions(self, interactions)

    def delete_interaction(self, interaction_id: str) -> None:
        """Delete one interaction."""
        writes.delete_interaction(self, interaction_id)

    # ---- recommending (coldbrew.live.queries, ranking, candidates, similar) --------------
    def user_query(self, user: UserQuery) -> tuple[UserQuery, set[str]]:
        """The model's query for a request's ``user``, and the items the user has seen
        (:func:`~coldbrew.live.queries.user_query`)."""
        return user_query(self, user)

    def recommend(self, query: Query) -> Answer:
        """Top-``k`` items for any mix of user id, text, attributes and liked items."""
        return ranking.recommend(self, query)

    def recommend_now(self, query: Query) -> Answer | None:
        """:meth:`recommend` if it can be answered at once (:func:`~.ranking.recommend_now`)."""
        return ranking.recommend_now(self, query)

    def candidates(self, model: Recommender, query: UserQuery, exclude: set[str]) -> np.ndarray:
        """Item rows worth scoring for ``query`` in a large catalogue
        (:meth:`~coldbrew.models.candidates.CandidateRecommender.candidates`)."""
        wrapped = CandidateRecommender(model, self.index, self.serving.candidates)
        return wrapped.candidates(query, self.serving.candidates, exclude)

    def similar_items(self, item_id: str, k: int = 10) -> Answer:
        """Items whose text vectors are closest to ``item_id``'s."""
        return similar.similar_items(self, item_id, k)

    def users_for_item(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Known users the served model ranks ``item_id`` highest for."""
        return similar.users_for_item(self, item_id, k)

    # ---- the served model (coldbrew.live.served) -----------------------------------------
    def resume_refits(self) -> None:
        """Count the events the served model has not learned, and refit if due."""
        served.resume_refits(self)

    def refit_now(self) -> dict[str, Any]:
        """Refit in this process and wait (the demo, scripts); returns the refit's outcome."""
        return served.refit_now(self)

    def refit(self, *, forced: bool = False) -> str:
        """Start a refit now (:func:`~coldbrew.live.served.refit`)."""
        return served.refit(self, forced=forced)

    def serve_version(self, version: str) -> None:
        """Serve a version another replica's refit published."""
        served.serve_version(self, version)

    # ---- status (coldbrew.live.status) ---------------------------------------------------
    @property
    def model_name(self) -> str:
        """What answers: a saved model's ``kind:directory``, else the service's encoder."""
        return self.saved.name if self.saved else self.encoder_name

    @property
    def query_encoder_name(self) -> str:
        """The name of the encoder that reads the requests' words."""
        return self.saved.encoder if self.saved else self.encoder_name

    def stats(self) -> dict[str, int]:
        return {"items": len(self.index), "users": len(self.users)}

    def model_status(self) -> dict[str, Any]:
        """The served version and the refits so far (for /admin/refit and /metrics)."""
        return status.model_status(self)


def now() -> float:
    return time.time()
