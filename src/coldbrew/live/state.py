"""The running recommender's live state: what the engine's parts read and change.

:class:`Live` holds the store, the encoder, the item index, the served model and its version,
and in memory the item table, each user's profile and history (:class:`UserState`), the items
by attribute value (for filters), who touched each item (for novelty) and the locks. Its
methods keep these consistent with each other; the jobs that use them live beside it: writes
(:mod:`coldbrew.live.writes`), query assembly and filters (:mod:`coldbrew.live.queries`),
ranking and candidates (:mod:`coldbrew.live.ranking`, :mod:`coldbrew.live.candidates`), the
served model's versions (:mod:`coldbrew.live.served`), similar items
(:mod:`coldbrew.live.similar`) and status (:mod:`coldbrew.live.status`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from coldbrew.cluster.encode import RayEncoder
from coldbrew.index import Index, make_index
from coldbrew.live.catalog import ItemTable, TextIds, short_key
from coldbrew.live.errors import NotFoundError
from coldbrew.live.explain import Explainer
from coldbrew.live.idsets import IdSet
from coldbrew.live.locks import ReadWriteLock
from coldbrew.live.records import POSITIVE_EVENTS, attribute_values
from coldbrew.live.refitter import Refitter
from coldbrew.live.saved import SavedModel
from coldbrew.live.serving import Serving
from coldbrew.live.versions import ModelVersions, VersionInfo
from coldbrew.models.base import Recommender
from coldbrew.store import Interaction, Item, Store, User
from coldbrew.store.codec import round_trip
from coldbrew.text.cache import text_digest
from coldbrew.text.encoder import Encoder
from coldbrew.text.memo import MemoEncoder
from coldbrew.text.runtime import runtime_or_default

if TYPE_CHECKING:
    from coldbrew.live.fleet import Fleet
    from coldbrew.live.follow import LanguageFollower

INLINE_ITEMS = 2_000
"""Catalogues up to this size are scored on the event loop (a few milliseconds)."""
BOOTSTRAP = "v000000"
"""The version name of the zero-shot model served before any refit."""
RAY_BULK_TEXTS = 256
"""With ``Serving.ray``, encode calls of this many texts or more (a catalogue batch, the vectors
missing at start-up) run on the cluster; a user's words stay in this process."""


@dataclass
class UserState:
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

    def copy(self) -> UserState:
        """The same user with its own interaction dict, to change and commit."""
        return replace(self, interactions=dict(self.interactions))


class Live:
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
        runtime: str | None = None,
    ) -> None:
        """``index``: ``auto``, ``exact``, ``hnsw`` or an index object (item text vectors, for
        similar items); ``graph_path``: where an HNSW graph is saved at close
        (:meth:`~coldbrew.live.engine.Engine.close`) and reused at the next start if still
        current; ``serving``: the model to serve; ``fleet``: the other replicas over the same
        PostgreSQL database (none: this process is alone); ``runtime``: the one ``encoder``
        runs on (:func:`~coldbrew.text.runtime.onnx_or_torch`; ``None``:
        ``$COLDBREW_ENCODER_RUNTIME``, else auto), on which refits and Ray workers rebuild it
        from its config (a float onnx encoder's is PyTorch's)."""
        self.store = store
        self.serving = serving or Serving()
        self.runtime = runtime_or_default(runtime)
        if self.serving.ray:  # a catalogue batch, start-up's missing vectors: on the cluster
            encoder = RayEncoder(
                encoder, min_texts=RAY_BULK_TEXTS, address=self.serving.ray, runtime=self.runtime
            )
        chunk = None if self.serving.ray else self.serving.write_chunk
        self.encoder = MemoEncoder(encoder, self.stored_passage, chunk=chunk)
        self.encoder_name = encoder.name
        self.index: Index = make_index(index, encoder.dim) if isinstance(index, str) else index
        self.index_kind = index if isinstance(index, str) else None  # chosen again at load
        self.graph_path = graph_path
        self.items = ItemTable()  # compact records; an Item is rebuilt on access
        self.users: dict[str, UserState] = {}
        self.model: Recommender | None = None
        self.info = VersionInfo(version=BOOTSTRAP, kind="zeroshot")
        self.follower: LanguageFollower | None = None  # set by the app for ``--encoder auto``
        self.saved: SavedModel | None = None  # ``serving.model`` is a saved model's directory
        self.fields: tuple[str, ...] = ()  # item fields the served model reads by name
        self.refitter: Refitter | None = None
        self.saver: threading.Thread | None = None  # saves the index start-up built
        self.fleet = fleet
        root = self.serving.models_dir or ".coldbrew/models"
        self.versions = fleet.versions(root) if fleet else ModelVersions(root)
        self.by_attribute: dict[str, dict[str, IdSet]] = {}
        self.text_ids = TextIds()  # short key of an item's text -> an item that had it
        self.users_of: dict[str, set[str]] = {}  # item id -> users with an interaction on it
        self.seq = 0
        self.forgets = 0
        self.shared = False  # whether the served model holds the index's rows (no copy)
        self.lock = ReadWriteLock()
        # writes commit one at a time, in the order they reach memory; the read lock is taken
        # only to change memory, so searches never wait for a database commit
        self.commit = threading.Lock()
        self.explainer = Explainer(self)
        self.ready = False

    def stored_passage(self, text: str) -> np.ndarray | None:
        """The stored vector of an item with exactly this text, if any (the memo's lookup)."""
        digest = text_digest(text)
        item_id = self.text_ids.get(short_key(digest))
        if item_id is None or item_id not in self.items or not self.index.contains(item_id):
            return None
        if self.items.digest(item_id) != digest:  # another text with the same 8-byte prefix
            return None
        vector: np.ndarray = self.index.row_vectors([self.index.ids.row(item_id)])[0]
        return vector

    def stored_form(self, vectors: np.ndarray) -> np.ndarray:
        """Fresh vectors as the store will read them back (its format's rounding), so memory
        holds what a restart rebuilds and answers do not change across one."""
        return round_trip(vectors, self.store.vector_dtype)

    def load_users(self) -> None:
        for user in self.store.users():
            self.users[user.user_id] = UserState(user)
        for inter in self.store.interactions():
            state = self.users.setdefault(inter.user_id, UserState(User(inter.user_id)))
            state.interactions[inter.interaction_id] = (self.next_seq(), inter)
            self.users_of.setdefault(inter.item_id, set()).add(inter.user_id)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def in_locked_pieces(self, count: int, put: Callable[[slice], None]) -> None:
        """``put`` each slice of ``count`` rows, ``serving.write_chunk`` at a time, under the
        write lock a piece: searches go in between, never waiting for a whole batch."""
        step = self.serving.write_chunk
        for start in range(0, count, step):
            with self.lock.write():
                put(slice(start, start + step))

    def get_item(self, item_id: str) -> Item:
        try:
            return self.items[item_id]
        except KeyError:
            raise NotFoundError("item", item_id) from None

    def remember_item(self, item: Item, *, keyed: bool = True) -> None:
        """Hold ``item`` (``keyed=False``: its text key is left to a
        :meth:`~coldbrew.live.catalog.TextIds.rebuild` after a bulk read)."""
        old = self.items.put(item)  # one look-up of the id: a million at start-up
        if old is not None:  # its old text no longer finds its vector
            self.text_ids.discard(short_key(old), item.item_id)
        if keyed:
            self.text_ids[short_key(self.items.digest(item.item_id))] = item.item_id
        for key, value in item.attributes.items():
            values = self.by_attribute.setdefault(key, {})
            for v in attribute_values(value):
                values.setdefault(v, IdSet()).add(item.item_id)

    def forget_text(self, item_id: str) -> None:
        """Its old text no longer finds its vector (which now belongs to its new text, if any)."""
        if item_id not in self.items:
            return
        self.text_ids.discard(short_key(self.items.digest(item_id)), item_id)

    def forget_item_attributes(self, item_id: str) -> None:
        old = self.items.get(item_id)
        if old is None:
            return
        for key, value in old.attributes.items():
            for v in attribute_values(value):
                self.by_attribute.get(key, {}).get(v, IdSet()).discard(item_id)

    def freeze_attributes(self) -> None:
        """The items by attribute value as they stand, compact (after a bulk read)."""
        for values in self.by_attribute.values():
            for members in values.values():
                members.freeze()

    def attribute_values(self, limit: int = 50) -> dict[str, list[str]]:
        """Item attributes and their most common values (for filters in the page)."""
        with self.lock.read():
            out = {}
            for key, values in self.by_attribute.items():
                ranked = sorted((v for v in values.items() if v[1]), key=lambda kv: -len(kv[1]))
                out[key] = sorted(v for v, _ in ranked[:limit])
            return out

    def track_items(self, user_id: str, before: set[str], after: set[str]) -> None:
        for item_id in before - after:
            self.users_of.get(item_id, set()).discard(user_id)
        for item_id in after - before:
            self.users_of.setdefault(item_id, set()).add(user_id)

    def changed(self, session: Any, kind: str, ids: Sequence[str]) -> None:
        """Log a write for the other replicas, in its own transaction (alone: nothing)."""
        if self.fleet is not None:
            self.fleet.log.record(session, kind, ids)
