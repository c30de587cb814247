"""The serving engine: the store, the served model and the item index kept consistent.

The engine serves a :class:`~coldbrew.models.Recommender` — the hybrid the service trains itself
(:mod:`coldbrew.live.refit`), a saved model, or, before anything is learned, the zero-shot
language model — and builds each request's :class:`~coldbrew.models.UserQuery` from the live
state: the user's words, attributes and current history. So a user's new feedback moves their
next answer in every part at once (CF parts fold the user in from that history), a new item is
scorable by every part that reads text as soon as its upsert returns, and deletes and forget-user
reach the served model's state immediately.

Every write encodes first, then commits to the database in one transaction, then updates memory,
so a failed write changes nothing. Writes commit one at a time; only the memory update holds
searches back (the write lock), never the encoding or the commit. At start-up the whole state
is rebuilt from the database and the latest good model version, reusing the stored vectors, so a
restart answers as before.
Replicas over one PostgreSQL database (:mod:`coldbrew.live.fleet`) log each write in its
transaction and apply the others' writes by re-reading the rows they touched (``refresh_*``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from coldbrew.cluster.encode import RayEncoder
from coldbrew.courtesy import paced
from coldbrew.index import Index, make_index
from coldbrew.index.exact import top_k
from coldbrew.live.answers import Answer, Query, Recommendation
from coldbrew.live.catalog import ItemTable, release_free_memory, short_key
from coldbrew.live.errors import BatchError, NotFoundError, RowError
from coldbrew.live.explain import Explainer
from coldbrew.live.locks import ReadWriteLock
from coldbrew.live.records import (
    EVENTS,
    POSITIVE_EVENTS,
    attribute_values,
    dataset_from_records,
    item_frame,
    item_text,
)
from coldbrew.live.refit import (
    RefitJob,
    Refitter,
    build_zeroshot,
    launcher,
    load_catalog,
    load_version,
    reconcile,
    run_refit,
    save_catalog_keys,
)
from coldbrew.live.saved import SavedModel, load_saved
from coldbrew.live.versions import ModelVersions, VersionInfo
from coldbrew.models.base import Recommendations, Recommender, UserQuery
from coldbrew.models.rerank import pool_size, rerank
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.store import Interaction, Item, Store, User
from coldbrew.store.codec import round_trip
from coldbrew.store.rows import empty_rows
from coldbrew.text.cache import text_digest
from coldbrew.text.encoder import Encoder
from coldbrew.text.memo import MemoEncoder

if TYPE_CHECKING:
    from coldbrew.live.fleet import Fleet
    from coldbrew.live.follow import LanguageFollower

__all__ = ["EVENTS", "POSITIVE_EVENTS", "Answer", "Engine", "Query", "Recommendation", "Serving"]

INLINE_ITEMS = 2_000
"""Catalogues up to this size are scored on the event loop (a few milliseconds)."""
BOOTSTRAP = "v000000"
"""The version name of the zero-shot model served before any refit."""
RAY_BULK_TEXTS = 256
"""With ``Serving.ray``, encode calls of this many texts or more (a catalogue batch, the vectors
missing at start-up) run on the cluster; a user's words stay in this process."""


@dataclass(frozen=True)
class Serving:
    """What the engine serves and how it keeps it fresh.

    ``model``: ``hybrid`` (the service trains its own, refitting in the background), ``zeroshot``
    (the language model alone, never refitted) or the directory of a saved model (served as is).
    Catalogues of ``score_all_below`` items or more are not scored whole: each part proposes
    ``candidates`` items (the language model through the item index), and only those are scored.
    """

    model: str = "hybrid"
    models_dir: str | None = None
    refit_every: int = 1000
    refit_minutes: float = 60.0
    refit_min_interactions: int = 50
    score_all_below: int = 50_000
    candidates: int = 200
    ray: str | None = None
    """Run refits as tasks on this Ray cluster (``auto`` or an address) instead of a child
    process, and encode bulk item texts there (:data:`RAY_BULK_TEXTS` or more at once)."""
    write_chunk: int = 32
    """Item texts are encoded this many at a time, a user's words going first between pieces
    (with ``ray``: all at once, on the cluster), and put in memory this many at a time under
    the write lock, searches going first between pieces."""


@dataclass
class _UserState:
    user: User
    interactions: dict[str, tuple[int, Interaction]] = field(default_factory=dict)

    def history(self) -> list[Interaction]:
        ordered = sorted(self.interactions.values(), key=lambda p: (p[1].timestamp, p[0]))
        return [inter for _, inter in ordered]

    def liked_and_disliked(self) -> tuple[list[str], list[str]]:
        """Items liked and disliked, oldest first; an item's latest event decides which."""
        last: dict[str, str] = {}
        for inter in self.history():
            last.pop(inter.item_id, None)
            last[inter.item_id] = inter.event
        liked = [i for i, e in last.items() if e in POSITIVE_EVENTS]
        return liked, [i for i, e in last.items() if e == "dislike"]

    def seen(self) -> set[str]:
        return {inter.item_id for _, inter in self.interactions.values()}

    def copy(self) -> _UserState:
        """The same user with its own interaction dict, to change and commit."""
        return replace(self, interactions=dict(self.interactions))


class Engine:
    """Items, users, the served model and the item index, in memory and in the store."""

    def __init__(
        self,
        store: Store,
        encoder: Encoder,
        *,
        index: str | Index = "auto",
        graph_path: str | None = None,
        serving: Serving | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        """``index``: ``auto``, ``exact``, ``hnsw`` or an index object (item text vectors, for
        similar items); ``graph_path``: where an HNSW graph is saved on :meth:`close` and reused
        at the next start if still current; ``serving``: the model to serve; ``fleet``: the
        other replicas over the same PostgreSQL database (none: this process is alone)."""
        self.store = store
        self.serving = serving or Serving()
        if self.serving.ray:  # a catalogue batch, start-up's missing vectors: on the cluster
            encoder = RayEncoder(encoder, min_texts=RAY_BULK_TEXTS, address=self.serving.ray)
        chunk = None if self.serving.ray else self.serving.write_chunk
        self.encoder = MemoEncoder(encoder, self._stored_passage, chunk=chunk)
        self.encoder_name = encoder.name
        self.index: Index = make_index(index, encoder.dim) if isinstance(index, str) else index
        self._index_kind = index if isinstance(index, str) else None  # chosen again at load
        self.graph_path = graph_path
        self.items = ItemTable()  # compact records; an Item is rebuilt on access
        self.users: dict[str, _UserState] = {}
        self.model: Recommender | None = None
        self.info = VersionInfo(version=BOOTSTRAP, kind="zeroshot")
        self.follower: LanguageFollower | None = None  # set by the app for ``--encoder auto``
        self.saved: SavedModel | None = None  # ``serving.model`` is a saved model's directory
        self._fields: tuple[str, ...] = ()  # item fields the served model reads by name
        self.refitter: Refitter | None = None
        self.fleet = fleet
        root = self.serving.models_dir or ".coldbrew/models"
        self.versions = fleet.versions(root) if fleet else ModelVersions(root)
        self._by_attribute: dict[str, dict[str, set[str]]] = {}
        self._text_ids: dict[int, str] = {}  # short key of an item's text -> an item with it
        self._users_of: dict[str, set[str]] = {}  # item id -> users with an interaction on it
        self._seq = 0
        self._forgets = 0
        self._shared = False  # whether the served model holds the index's rows (no copy)
        self._lock = ReadWriteLock()
        # writes commit one at a time, in the order they reach memory; the read lock is taken
        # only to change memory, so searches never wait for a database commit
        self._commit = threading.Lock()
        self._explainer = Explainer(self)
        self.ready = False

    # ---- start-up -------------------------------------------------------------------------
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
            self._remember_item(item)
        ids = list(self.items)
        if self._index_kind is not None and not len(self.index):  # now the size is known
            self.index = make_index(self._index_kind, self.encoder.dim, len(ids))
        vectors, found = self.store.vector_matrix(
            "item", self.encoder_name, ids, dtype=self.index.vectors.dtype
        )
        missing = np.flatnonzero(~found)
        if len(missing):
            if vectors.shape[1] != self.encoder.dim:
                vectors = empty_rows(len(ids), self.encoder.dim, vectors.dtype)
            texts = [item_text(self.items[ids[n]]) for n in missing]
            fresh = self._stored_form(self.encoder.inner.encode(texts, kind="passage"))
            with self.store.transaction() as session:
                self.store.put_vectors(
                    session, "item", self.encoder_name, [ids[n] for n in missing], fresh
                )
            vectors[missing] = fresh
        if ids:
            if not len(self.index):
                graph = self._graph_file(len(ids))
                if not self.index.add_all(ids, vectors, graph) and graph:
                    self.index.save_graph(graph)  # built now: a crash before close keeps it
            else:
                self.index.add(ids, vectors)
        del vectors
        self._load_users()
        self.versions.clean()
        self._load_model()
        release_free_memory()  # start-up's transient rows and frames, back to the system
        self.ready = True
        if self.refitter is not None:
            self.refitter.start_timer()
        if self.fleet is not None:
            self.fleet.start(self)
        return self

    def _stored_passage(self, text: str) -> np.ndarray | None:
        """The stored vector of an item with exactly this text, if any (the memo's lookup)."""
        digest = text_digest(text)
        item_id = self._text_ids.get(short_key(digest))
        if item_id is None or not self.index.contains(item_id):
            return None
        if self.items.digest(item_id) != digest:  # another text with the same 8-byte prefix
            return None
        vector: np.ndarray = self.index.row_vectors([self.index.ids.row(item_id)])[0]
        return vector

    def _stored_form(self, vectors: np.ndarray) -> np.ndarray:
        """Fresh vectors as the store will read them back (its format's rounding), so memory
        holds what a restart rebuilds and answers do not change across one."""
        return round_trip(vectors, self.store.vector_dtype)

    def _graph_file(self, n_items: int) -> str | None:
        """Where to keep the graph: only catalogues big enough to be searched by graph."""
        return self.graph_path if self.index.wants_graph(n_items) else None

    def close(self) -> None:
        """Stop answering and refitting; save the HNSW graph (if any) for the next start."""
        self.ready = False
        if self.refitter is not None:
            self.refitter.stop()
        if self.fleet is not None:
            self.fleet.stop()
        with self._lock.write():
            graph = self._graph_file(len(self.index))
            if graph:
                self.index.save_graph(graph)

    def _load_users(self) -> None:
        for user in self.store.users():
            self.users[user.user_id] = _UserState(user)
        for inter in self.store.interactions():
            state = self.users.setdefault(inter.user_id, _UserState(User(inter.user_id)))
            state.interactions[inter.interaction_id] = (self._next_seq(), inter)
            self._users_of.setdefault(inter.item_id, set()).add(inter.user_id)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ---- the served model -----------------------------------------------------------------
    def _load_model(self) -> None:
        plan = self.serving
        current = self.versions.current() if plan.model == "hybrid" else None
        if plan.model not in ("hybrid", "zeroshot"):
            self.saved = saved = load_saved(plan.model, self.items.values(), self.encoder_name)
            model, self.info, self._fields = saved.model, saved.info, saved.fields
            seen = load_catalog(Path(plan.model)) or {
                i: self.items.text_keys[i] for i in model.item_ids if i in self.items
            }
            # its users are its own
            reconcile(model, self.items, seen, keys=self.items.text_keys, fields=self._fields)
            self.model = model
        elif current is not None:
            model, seen, self.info = load_version(self.versions, current, self.encoder)
            reconcile(model, self.items, seen, set(self.users), self.items.text_keys)
            self.model = model
        else:
            self.model = self._bootstrap()
        if plan.model == "hybrid":
            self._start_refitter()

    def _bootstrap(self) -> Recommender | None:
        """The language model alone, over the current catalogue (none without items)."""
        if not self.items:
            return None
        dataset = dataset_from_records(
            list(self.items.values()), [s.user for s in self.users.values()], []
        )
        held = np.dtype(self.index.vectors.dtype).name  # as compact as the index's rows
        model = build_zeroshot(self.encoder, held).fit(dataset)
        self._share_vectors(model)
        return model

    def _share_vectors(self, model: Recommender, item_ids: Sequence[str] | None = None) -> None:
        """Let a zero-shot model hold the index's rows rather than a copy when they are the
        same (``item_ids``: only those changed since it last shared them)."""
        if not isinstance(model, ZeroShotRecommender) or (item_ids and not self._shared):
            self._shared = False
            return
        rows = None if item_ids is None else model.item_ids.rows(item_ids)
        self._shared = model.share_item_vectors(self.index.vectors, rows, self.index.ids)

    def _start_refitter(self) -> None:
        plan = self.serving
        self.refitter = Refitter(
            self._refit_job,
            self._swap,
            every=plan.refit_every,
            minutes=plan.refit_minutes,
            min_interactions=plan.refit_min_interactions,
            launch=launcher(plan.ray),
        )
        if self.fleet is not None:  # one replica trains for the fleet
            self.refitter.leader = self.fleet.is_trainer
        self.resume_refits()

    def resume_refits(self) -> None:
        """Count the positive events the served model has not learned, and refit if due (at
        start, and when this replica is elected the fleet's trainer)."""
        if self.refitter is None:
            return
        with self._lock.read():
            positives = [
                inter
                for state in self.users.values()
                for _, inter in state.interactions.values()
                if inter.event in POSITIVE_EVENTS
            ]
            unseen = sum(1 for i in positives if i.timestamp > self.info.trained_through)
            bootstrap = self.info.version == BOOTSTRAP
        self.refitter.positives, self.refitter.new_interactions = len(positives), 0
        if unseen and bootstrap:
            self.refitter.request(reason="start")  # data but no model yet
        elif unseen:
            self.refitter.added(0, unseen)

    def _refit_job(self, forced: bool) -> RefitJob:
        serving = self.info.version if self.info.version in self.versions.versions() else None
        return RefitJob(
            db_url=self.store.url,
            models_dir=str(self.versions.root),
            encoder=self.encoder.config(),
            serving=serving,
            forced=forced,
            epoch=self._forgets,
        )

    def _swap(self, outcome: dict[str, Any], job: RefitJob) -> None:
        """Serve a refit's new version (called by the refitter when one was committed)."""
        version = outcome.get("version")
        if not outcome.get("swapped") or version is None:
            return
        if job.epoch != self._forgets:  # a user was forgotten after the job read the database
            self.versions.prune({v for v in self.versions.versions() if v != version})
            raise RuntimeError("a user was forgotten during the refit; its model is discarded")
        model, seen, info = load_version(self.versions, version, self.encoder)
        self.versions.publish(version)  # replicas: in the database first, then served here
        with self._lock.write():
            reconcile(model, self.items, seen, set(self.users), self.items.text_keys)
            previous = self.info.version
            self.model, self.info = model, info
        # keep the previous version to roll back to, unless it holds a forgotten user's data
        self.versions.prune({version} if job.forced else {version, previous})

    def refit_now(self) -> dict[str, Any]:
        """Refit in this process and wait (the demo, scripts); returns the refit's outcome."""
        job = self._refit_job(False)
        outcome = run_refit(job, self.encoder.inner)
        self._swap(outcome, job)
        return outcome

    def refit(self, *, forced: bool = False) -> str:
        """Start a refit now (``admin``); returns started / queued / waiting / off, or
        requested (a replica that does not train asks the fleet's trainer)."""
        if self.refitter is None:
            return "off"
        if self.fleet is not None and not self.fleet.is_trainer():
            return self.fleet.ask_trainer(forced=forced)
        return self.refitter.request(forced=forced, reason="admin")

    def serve_version(self, version: str) -> None:
        """Serve a version another replica's refit published (its files are here already)."""
        if version == self.info.version:
            return
        model, seen, info = load_version(self.versions, version, self.encoder)
        with self._lock.write():
            reconcile(model, self.items, seen, set(self.users), self.items.text_keys)
            self.model, self.info = model, info

    # ---- items ----------------------------------------------------------------------------
    def upsert_items(self, items: Sequence[Item]) -> None:
        """Add or replace items; every part of the served model can recommend them when this
        returns. Items identical to the stored ones are left alone (no encoding, no write).
        They are encoded, and then put in memory (the index, the served model), in pieces of
        ``serving.write_chunk``, so searches wait for one piece at most, never for a batch."""
        unique = {i.item_id: i for i in items}.values()
        items = [i for i in paced(unique) if self.items.get(i.item_id) != i]
        if not items:
            return
        encoder, texts = self.encoder, [item_text(i) for i in items]
        vectors = self._stored_form(encoder.encode(texts, kind="passage"))
        ids = [i.item_id for i in items]
        with self._commit:
            if self.encoder is not encoder:  # a language switch (reencode) swapped it meanwhile
                vectors = self._stored_form(self.encoder.encode(texts, kind="passage"))
            with self.store.transaction() as session:
                self.store.upsert_items(session, items)
                self.store.put_vectors(session, "item", self.encoder_name, ids, vectors)
                self._changed(session, "items", ids)
            self._in_locked_pieces(len(items), lambda s: self._put_items(items[s], vectors[s]))
        if self.follower is not None:
            self.follower.check([f"{i.title} {i.description}" for i in items])

    def _in_locked_pieces(self, count: int, put: Callable[[slice], None]) -> None:
        """``put`` each slice of ``count`` rows, ``serving.write_chunk`` at a time, under the
        write lock a piece: searches go in between, never waiting for a whole batch."""
        step = self.serving.write_chunk
        for start in range(0, count, step):
            with self._lock.write():
                put(slice(start, start + step))

    def _put_items(self, items: Sequence[Item], vectors: np.ndarray) -> None:
        """Items (and their vectors) into memory, the index and the served model."""
        for item in items:
            self._forget_item_attributes(item.item_id)
            self._remember_item(item)
        ids = [i.item_id for i in items]
        self.index.add(ids, vectors)
        if self.model is None:
            self.model = self._bootstrap()
        else:  # every part that reads text reads them now (their vectors are known)
            self.model.add_items(item_frame(items, self._fields))
            self._share_vectors(self.model, ids)

    def sample_texts(self, n: int) -> list[str]:
        """Title and description of up to ``n`` items spread evenly over the catalogue."""
        with self._lock.read():
            ids = list(self.items)
            step = max(1, len(ids) // n)
            sample = (self.items[i] for i in ids[::step])
            return [f"{item.title} {item.description}" for item in sample]

    def reencode(self, encoder: Encoder) -> None:
        """Serve ``encoder`` instead of the current one. Every item is encoded with it (and
        stored) while answers go on; then, under the write lock, the items written meanwhile
        are encoded too and the index, the encoder and the language model are swapped. A
        hybrid refits with the new encoder at once."""
        with self._lock.read():
            ids = list(self.items)
            digests = {i: self.items.digest(i) for i in ids}
            texts = [item_text(self.items[i]) for i in ids]
        vectors = self._encode_and_store(encoder, ids, texts, register=True)
        # no write between its commit and its memory update (``_commit``) sees the swap
        with self._commit, self._lock.write():
            if not self.ready:
                return  # closed meanwhile
            rows = dict(zip(ids, vectors))
            late = [i for i in self.items if digests.get(i) != self.items.digest(i)]
            late_texts = [item_text(self.items[i]) for i in late]
            rows.update(zip(late, self._encode_and_store(encoder, late, late_texts)))
            current = list(self.items)
            self.index = make_index(self._index_kind or "exact", encoder.dim, len(current))
            if current:
                self.index.add_all(current, np.stack([rows[i] for i in current]), None)
            self.encoder = MemoEncoder(encoder, self._stored_passage)
            self.encoder_name = encoder.name
            self._shared = False
            self.model = self._bootstrap()
            self.info = VersionInfo(version=BOOTSTRAP, kind="zeroshot")
        self.resume_refits()

    def _encode_and_store(
        self, encoder: Encoder, ids: Sequence[str], texts: Sequence[str], register: bool = False
    ) -> np.ndarray:
        vectors = np.zeros((0, encoder.dim), dtype=np.float32)
        if texts:
            vectors = self._stored_form(encoder.encode(list(texts), kind="passage"))
        with self.store.transaction() as session:
            if register:
                self.store.register_model(session, encoder.name, encoder.config(), encoder.dim)
            self.store.put_vectors(session, "item", encoder.name, ids, vectors)
        return vectors

    def delete_item(self, item_id: str) -> None:
        with self._commit:
            if item_id not in self.items:
                raise NotFoundError("item", item_id)
            with self.store.transaction() as session:
                self.store.delete_items(session, [item_id])
                self._changed(session, "items", [item_id])
            with self._lock.write():
                self._drop_items([item_id])

    def _drop_items(self, item_ids: Sequence[str]) -> None:
        for item_id in item_ids:
            self._forget_item_attributes(item_id)
            self._forget_text(item_id)
            del self.items[item_id]
        self.index.remove(list(item_ids))
        if self.model is not None:
            self.model.remove_items(list(item_ids))

    def refresh_items(self, item_ids: Sequence[str]) -> None:
        """Bring these items up to the database (another replica wrote them): changed ones are
        put with their stored vectors (never re-encoded), deleted ones dropped. The rows are
        read while local writes wait, so none can land between the read and its use."""
        with self._commit:
            live = {i.item_id: i for i in self.store.items_of(item_ids)}
            gone = [i for i in dict.fromkeys(item_ids) if i in self.items and i not in live]
            items = [i for i in live.values() if self.items.get(i.item_id) != i]
            stored = self.store.vectors_of("item", self.encoder_name, [i.item_id for i in items])
            missing = [i for i in items if i.item_id not in stored]
            if missing:  # stored by a replica with another encoder
                encoded = self.encoder.encode([item_text(i) for i in missing], kind="passage")
                stored.update(zip([i.item_id for i in missing], encoded))
            with self._lock.write():
                if gone:
                    self._drop_items(gone)
                if items:
                    self._put_items(items, np.stack([stored[i.item_id] for i in items]))

    def get_item(self, item_id: str) -> Item:
        try:
            return self.items[item_id]
        except KeyError:
            raise NotFoundError("item", item_id) from None

    def _remember_item(self, item: Item) -> None:
        self._forget_text(item.item_id)
        self.items[item.item_id] = item
        self._text_ids[short_key(self.items.digest(item.item_id))] = item.item_id
        for key, value in item.attributes.items():
            values = self._by_attribute.setdefault(key, {})
            for v in attribute_values(value):
                values.setdefault(v, set()).add(item.item_id)

    def _forget_text(self, item_id: str) -> None:
        """Its old text no longer finds its vector (which now belongs to its new text, if any)."""
        if item_id not in self.items:
            return
        key = short_key(self.items.digest(item_id))
        if self._text_ids.get(key) == item_id:
            del self._text_ids[key]

    def _forget_item_attributes(self, item_id: str) -> None:
        old = self.items.get(item_id)
        if old is None:
            return
        for key, value in old.attributes.items():
            for v in attribute_values(value):
                self._by_attribute.get(key, {}).get(v, set()).discard(item_id)

    def attribute_values(self, limit: int = 50) -> dict[str, list[str]]:
        """Item attributes and their most common values (for filters in the page)."""
        with self._lock.read():
            out = {}
            for key, values in self._by_attribute.items():
                ranked = sorted((v for v in values.items() if v[1]), key=lambda kv: -len(kv[1]))
                out[key] = sorted(v for v, _ in ranked[:limit])
            return out

    # ---- users ----------------------------------------------------------------------------
    def upsert_users(self, users: Sequence[User]) -> None:
        """Add or replace users' text and attributes; their interactions stay. Users identical
        to the stored ones are left alone (no lock, no write)."""
        users = [u for u in paced({u.user_id: u for u in users}.values()) if self._changed_user(u)]
        if not users:
            return
        with self._commit:
            with self.store.transaction() as session:
                self.store.upsert_users(session, users)
                self._changed(session, "users", [u.user_id for u in users])
            self._in_locked_pieces(len(users), lambda s: self._put_users(users[s]))

    def _put_users(self, users: Sequence[User]) -> None:
        """Users' profiles into memory, their interactions kept."""
        for user in users:
            old = self.users.get(user.user_id)
            interactions = dict(old.interactions) if old else {}
            self.users[user.user_id] = _UserState(user, interactions)

    def _changed_user(self, user: User) -> bool:
        """Whether ``user`` is new, or differs from the stored profile."""
        state = self.users.get(user.user_id)
        return state is None or state.user != user

    def get_user(self, user_id: str) -> tuple[User, list[Interaction]]:
        with self._lock.read():
            state = self.users.get(user_id)
            if state is None:
                raise NotFoundError("user", user_id)
            return state.user, state.history()

    def forget_user(self, user_id: str) -> None:
        """Remove the user's profile, attributes and interactions everywhere, now: from the
        database, from memory, from the served model and from its files (rewritten without
        them; every other version deleted). Since the model's other numbers learned from them
        too, a refit without them is forced (one running now is cancelled: it read them)."""
        with self._commit:
            if user_id not in self.users:
                raise NotFoundError("user", user_id)
            with self.store.transaction() as session:
                self.store.forget_user(session, user_id)
                self._changed(session, "users", [user_id])
                if self.fleet is not None:  # a trainer elected later still owes the refit
                    self.fleet.forgot(session)
            with self._lock.write():
                self._forget_here(user_id)
        self._rewrite_served(share=True)
        self._refit_without_them()

    def _refit_without_them(self) -> None:
        """After a forget: a refit that read the user is cancelled, and one without them is
        forced (it starts once the cancelled one has ended)."""
        if self.refitter is not None:
            self.refitter.cancel("a user was forgotten")
            self.refitter.request(forced=True, reason="forget-user")

    def _forget_here(self, user_id: str) -> None:
        """The user out of memory and the served model (the caller holds the write lock)."""
        self._track_items(user_id, self.users.pop(user_id).seen(), set())
        if self.model is not None:
            self.model.forget_user(user_id)
        self._forgets += 1

    def _rewrite_served(self, *, share: bool) -> None:
        """Write the served version's files again from the served model, which has forgotten
        the user, and delete every other version: a forget reaches the files at once, not only
        once the forced refit is served (``share``: replicas, in the database too). Under the
        read lock: answers go on, writes wait for the files."""
        with self._lock.read():
            model, version = self.model, self.info.version
            if model is None or version not in self.versions.versions():
                return  # nothing saved: the language model before any refit, or --model's

            def write(path: Path) -> None:
                model.save(path, profiles=False)
                save_catalog_keys(path, self.items.text_keys)

            self.versions.replace(version, write, share=share)

    def refresh_users(self, user_ids: Sequence[str]) -> None:
        """Bring these users (profile and interactions) up to the database, where another
        replica wrote them; a user gone from it was forgotten there, and is forgotten here.
        The rows are read while local writes wait (see :meth:`refresh_items`)."""
        forgot, added = False, [0, 0]  # new positive events, new events
        with self._commit:
            found = {u.user_id: u for u in self.store.users_of(user_ids)}
            history: dict[str, list[Interaction]] = {}
            for inter in self.store.interactions_of(list(found)):
                history.setdefault(inter.user_id, []).append(inter)
            with self._lock.write():
                for user_id in dict.fromkeys(user_ids):
                    if user_id in found:
                        self._refresh_user(found[user_id], history.get(user_id, []), added)
                    elif user_id in self.users:
                        self._forget_here(user_id)
                        forgot = True
        if forgot:  # the replica that forgot them rewrote the fleet's copy
            self._rewrite_served(share=False)
            self._refit_without_them()
        elif self.refitter is not None and added[1]:
            self.refitter.added(added[0], added[1])

    def _refresh_user(self, user: User, history: list[Interaction], added: list[int]) -> None:
        old = self.users.get(user.user_id) or _UserState(user)
        state = _UserState(user)
        for inter in history:
            seq = old.interactions.get(inter.interaction_id, (None, None))[0]
            if seq is None:
                added[0] += inter.event in POSITIVE_EVENTS
                added[1] += 1
            state.interactions[inter.interaction_id] = (seq or self._next_seq(), inter)
        self._track_items(user.user_id, old.seen(), state.seen())
        self.users[user.user_id] = state

    # ---- interactions ---------------------------------------------------------------------
    def add_interactions(self, interactions: Sequence[Interaction]) -> None:
        """Store interactions (feedback included); each user's next answer reflects them.

        Users not seen before are created; unknown items make the whole call fail.
        """
        with self._commit:
            errors = [
                RowError(n, inter.interaction_id, "item_id", f"item {inter.item_id!r} not found")
                for n, inter in enumerate(interactions)
                if inter.item_id not in self.items
            ]
            if errors:
                raise BatchError(errors)
            changed: dict[str, _UserState] = {}
            for inter in interactions:
                state = changed.get(inter.user_id)
                if state is None:
                    old = self.users.get(inter.user_id) or _UserState(User(inter.user_id))
                    state = changed[inter.user_id] = old.copy()
                seq = state.interactions.get(inter.interaction_id, (None, None))[0]
                state.interactions[inter.interaction_id] = (seq or self._next_seq(), inter)
            self._commit_user_changes(list(changed.values()), interactions=interactions)
        if self.refitter is not None:
            positives = sum(1 for i in interactions if i.event in POSITIVE_EVENTS)
            self.refitter.added(positives, len(interactions))

    def delete_interaction(self, interaction_id: str) -> None:
        with self._commit:
            for state in self.users.values():
                if interaction_id in state.interactions:
                    new = state.copy()
                    del new.interactions[interaction_id]
                    self._commit_user_changes([new], deleted=[interaction_id])
                    return
            raise NotFoundError("interaction", interaction_id)

    def _commit_user_changes(
        self,
        states: list[_UserState],
        *,
        interactions: Sequence[Interaction] = (),
        deleted: Sequence[str] = (),
    ) -> None:
        """Commit, then update memory under the write lock (the caller holds ``_commit``)."""
        new_users = [s.user for s in states if s.user.user_id not in self.users]
        with self.store.transaction() as session:
            self.store.upsert_users(session, new_users)
            self.store.upsert_interactions(session, interactions)
            self.store.delete_interactions(session, deleted)
            self._changed(session, "users", [s.user.user_id for s in states])
        with self._lock.write():
            for state in states:
                old = self.users.get(state.user.user_id)
                self._track_items(state.user.user_id, old.seen() if old else set(), state.seen())
                self.users[state.user.user_id] = state

    def _changed(self, session: Any, kind: str, ids: Sequence[str]) -> None:
        """Log a write for the other replicas, in its own transaction (alone: nothing)."""
        if self.fleet is not None:
            self.fleet.log.record(session, kind, ids)

    def _track_items(self, user_id: str, before: set[str], after: set[str]) -> None:
        for item_id in before - after:
            self._users_of.get(item_id, set()).discard(user_id)
        for item_id in after - before:
            self._users_of.setdefault(item_id, set()).add(user_id)

    # ---- recommending ---------------------------------------------------------------------
    def user_query(self, query: Query) -> tuple[UserQuery, set[str]]:
        """The model's query for this request (the stored profile and current history, with
        what the request adds), and the items the user has seen."""
        state = self.users.get(query.user_id) if query.user_id else None
        if query.user_id and state is None:
            raise NotFoundError("user", query.user_id)
        for item_id in query.liked:
            if item_id not in self.items:
                raise NotFoundError("item", item_id)
        text = query.text.strip() if query.text and query.text.strip() else None
        if text is None and state is not None and state.user.text.strip():
            text = state.user.text.strip()
        attributes = {**(state.user.attributes if state else {}), **query.attributes}
        liked, disliked = state.liked_and_disliked() if state else ([], [])
        # deleted items stay in the user's history in the database but count no more
        liked = [i for i in dict.fromkeys([*liked, *query.liked]) if i in self.items]
        disliked = [i for i in disliked if i in self.items]
        seen = (state.seen() if state else set()) | set(query.liked)
        # the model's stored history is for users it was trained on; a user whose history is
        # now empty is answered from what they bring today
        user_id = query.user_id if liked else None
        uq = UserQuery(user_id, text, attributes, tuple(liked), tuple(disliked), query.context)
        return uq, seen

    def _allowed(self, query: Query) -> set[str] | None:
        allowed = set(query.allowed_ids) if query.allowed_ids is not None else None
        for key, values in query.filters.items():
            index = self._by_attribute.get(key, {})
            matching: set[str] = set()
            for value in values:
                matching |= index.get(str(value), set())
            allowed = matching if allowed is None else allowed & matching
        return allowed

    def recommend(self, query: Query) -> Answer:
        """Top-``k`` items for any mix of user id, text, attributes and liked items."""
        with self._lock.read():
            return self._recommend(query)

    def recommend_now(self, query: Query) -> Answer | None:
        """:meth:`recommend`, if it can be answered at once without blocking; else ``None``.

        At once means: without the encoder (a user known only by their history, or liked items;
        no text or attributes, no explanations), with no filters or allowed ids, on a catalogue
        of at most :data:`INLINE_ITEMS` items (the model scores every part of it), and while no
        write holds or waits for the lock. The service answers such
        requests on its event loop and sends the rest to worker threads.
        """
        if query.text or query.attributes or query.explain or query.filters:
            return None
        if query.allowed_ids is not None or len(self.items) > INLINE_ITEMS:
            return None
        with self._lock.try_read() as free:
            if not free:
                return None
            uq, _ = self.user_query(query)
            if uq.text or uq.attributes:
                return None
            return self._recommend(query)

    def _recommend(self, query: Query) -> Answer:
        """The body of :meth:`recommend`; the caller holds the read lock."""
        uq, seen = self.user_query(query)
        model, info = self.model, self.info
        if model is None:  # no items yet: nothing to recommend
            return Answer([], info.version, info.kind)
        if uq.is_empty():
            raise ValueError(
                "nothing is known about this user yet: give text, attributes or liked items"
            )
        exclude = set(query.excluded_ids) | (seen if query.exclude_seen else set())
        allowed = self._allowed(query)
        subset = len(model.item_ids) >= self.serving.score_all_below
        n = pool_size(query.k) if query.diversity or query.novelty else query.k
        if subset:
            found = self._recommend_candidates(model, uq, n, exclude, allowed)
        else:
            found = model.recommend(uq, n, exclude=exclude, candidates=allowed, exclude_seen=False)
        found = self._controlled(found, query)
        recs = [Recommendation(self.items[i], float(s)) for i, s in zip(found.ids, found.scores)]
        if query.explain and recs:
            sent = UserQuery(
                text=query.text,
                attributes=query.attributes,
                liked=query.liked,
                context=query.context,
            )
            quotable = None if query.quote_profile else sent
            self._explainer.explain(model, uq, recs, quotable, subset=subset)
        return Answer(recs, info.version, info.kind)

    def _controlled(self, found: Recommendations, query: Query) -> Recommendations:
        """The top ``query.k`` of the pool ``found`` with the request's diversity (over the
        index's text vectors) and novelty (against how many users touched each item)."""
        if not (query.diversity or query.novelty):
            return found
        vectors = None
        if query.diversity:
            vectors = self.index.row_vectors(self.index.ids.rows(found.ids))
        popularity = np.asarray([len(self._users_of.get(i, ())) for i in found.ids], np.float32)
        chosen = rerank(
            np.asarray(found.scores),
            query.k,
            vectors=vectors,
            popularity=popularity,
            diversity=query.diversity,
            novelty=query.novelty,
        )
        return Recommendations([found.ids[c] for c in chosen], np.asarray(found.scores)[chosen])

    def candidates(self, model: Recommender, query: UserQuery, exclude: set[str]) -> np.ndarray:
        """Item rows (of ``model``) worth scoring for ``query`` in a large catalogue: what the
        model's parts propose (exact tops over CF factors, the most popular, the newest items
        without interactions) and the language model's nearest items in the item index."""
        n = self.serving.candidates
        rows = [model.propose(query, n)]
        text_model = _text_model(model)
        if text_model is not None:
            vector = text_model.user_vectors([text_model.resolve(query)])[0]
            if np.any(vector):
                ids, _ = self.index.search(vector[None, :], n, exclude=[exclude])
                rows.append(model.item_ids.rows(ids[0], skip_unknown=True))
        found: np.ndarray = np.unique(np.concatenate(rows)).astype(np.int64)
        return found

    def _recommend_candidates(
        self,
        model: Recommender,
        query: UserQuery,
        k: int,
        exclude: set[str],
        allowed: set[str] | None,
    ) -> Recommendations:
        """The top ``k`` of the candidates only (:meth:`candidates`; an allowed subset smaller
        than the candidates is scored whole)."""
        if allowed is not None and len(allowed) <= 4 * self.serving.candidates:
            rows = model.item_ids.rows(sorted(allowed), skip_unknown=True)
        else:
            rows = self.candidates(model, query, exclude)
            if allowed is not None:
                rows = rows[np.isin(rows, model.item_ids.rows(allowed, skip_unknown=True))]
        banned = model.item_ids.rows(exclude, skip_unknown=True)
        rows = rows[~np.isin(rows, banned)]
        scores = model.score_rows([query], rows)[0]
        order = top_k(scores, k)[0]
        order = order[np.isfinite(scores[order])]
        return Recommendations(model.item_ids.ids(rows[order]), scores[order])

    def similar_items(self, item_id: str, k: int = 10) -> Answer:
        """Items whose text vectors are closest to ``item_id``'s."""
        with self._lock.read():
            if item_id not in self.items:
                raise NotFoundError("item", item_id)
            vector = self.index.row_vectors([self.index.ids.row(item_id)])
            ids, scores = self.index.search(vector, k, exclude=[[item_id]])
            recs = [
                Recommendation(self.items[o], float(s), self._explainer.similar(item_id, o))
                for o, s in zip(ids[0], scores[0])
            ]
            return Answer(recs, self.info.version, self.info.kind)

    def users_for_item(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Known users the served model ranks ``item_id`` highest for (who it would reach)."""
        with self._lock.read():
            self.get_item(item_id)
            model = self.model
            if model is None:
                return []
            pairs: list[tuple[str, float]] = []
            queries = [(u, self.user_query(Query(user_id=u))[0]) for u in sorted(self.users)]
            queries = [(u, q) for u, q in queries if not q.is_empty()]
            row = model.item_ids.row(item_id)
            for start in range(0, len(queries), 256):
                batch = queries[start : start + 256]
                scores = model.score([q for _, q in batch])[:, row]
                pairs.extend((u, float(s)) for (u, _), s in zip(batch, scores))
            return sorted(pairs, key=lambda p: -p[1])[:k]

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
        status: dict[str, Any] = {
            "version": self.info.version,
            "kind": self.info.kind,
            "serving": self.serving.model,
            "trainer": self.fleet is None or self.fleet.is_trainer(),
            "running": False,
            "refits": 0,
            "outcomes": {},
            "last": {},
        }
        if self.refitter is not None:
            stats = self.refitter.stats
            status.update(
                running=self.refitter.running,
                running_since=stats.running_since,
                refits=sum(stats.counts.values()),
                outcomes=dict(stats.counts),
                last=_json_safe(stats.last),
            )
        return status


def _text_model(model: Recommender) -> ZeroShotRecommender | None:
    """The language-model part of ``model`` (itself, for a zero-shot model), if it has one."""
    for part in model.named_parts().values():
        if isinstance(part, ZeroShotRecommender):
            return part
    return None


def _json_safe(value: Any) -> Any:
    """NaN and infinities (a judge with no events) as ``None``, for JSON answers."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def now() -> float:
    return time.time()
