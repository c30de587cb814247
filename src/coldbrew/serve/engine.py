"""The serving engine: the store, the encoder and the index kept consistent with each other.

Every write encodes first, then commits to the database in one transaction, then updates memory,
so a failed write changes nothing and a successful one is searchable when it returns. At start-up
the whole state is rebuilt from the database, reusing the stored vectors of the current encoder,
so a restart answers exactly as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from coldbrew.index import make_index
from coldbrew.index.exact import ExactIndex
from coldbrew.index.hnsw import HNSWIndex
from coldbrew.models.zeroshot import combine_parts, liked_vector
from coldbrew.serve.errors import BatchError, NotFoundError, RowError
from coldbrew.serve.explain import (
    Explanation,
    Parts,
    WordVectors,
    explain,
    keywords,
    summarize_attributes,
)
from coldbrew.serve.locks import LockedEncoder, ReadWriteLock
from coldbrew.store import Interaction, Item, Store, User
from coldbrew.text.encoder import Encoder
from coldbrew.text.templates import ItemTemplate, UserTemplate

POSITIVE_EVENTS = ("view", "click", "like", "purchase")
EVENTS = (*POSITIVE_EVENTS, "dislike")


@dataclass(frozen=True)
class Weights:
    """How much each known part of a user counts (the zero-shot model's defaults)."""

    text: float = 1.0
    attributes: float = 0.5
    liked: float = 1.0
    disliked: float = 0.5
    recency_decay: float = 0.9


@dataclass(frozen=True)
class Query:
    """A recommendation request: any mix of a known user, text, attributes and liked items."""

    user_id: str | None = None
    text: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    liked: tuple[str, ...] = ()
    k: int = 10
    filters: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    allowed_ids: tuple[str, ...] | None = None
    excluded_ids: tuple[str, ...] = ()
    exclude_seen: bool = True
    explain: bool = True
    # whether explanations may quote the stored user's text, attributes and liked items, or
    # only what this request sent (the service decides by the caller's key)
    quote_profile: bool = True


@dataclass
class Recommendation:
    item: Item
    score: float
    explanation: Explanation | None = None


@dataclass
class _UserState:
    user: User
    text_vector: np.ndarray | None = None
    attribute_vector: np.ndarray | None = None
    vector: np.ndarray | None = None
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


def _text_attributes(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """Attributes worth reading as text: strings and lists of strings (not prices or counts)."""
    return tuple(
        k
        for k, v in attributes.items()
        if isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
    )


def item_text(item: Item) -> str:
    """The text an item is encoded from: title, description, then its textual attributes."""
    template = ItemTemplate(("title", "description"), _text_attributes(item.attributes))
    return template.render(
        {**item.attributes, "title": item.title, "description": item.description}
    )


def plain_text(item: Item) -> str:
    """Title, description and attribute values, without labels (for shared-word explanations)."""
    values = " ".join(" ".join(_attribute_values(v)) for v in item.attributes.values())
    return f"{item.title} {item.description} {values}"


def _attribute_values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


class Engine:
    """Items, users and their vectors, in memory and in the store, kept in step."""

    def __init__(
        self,
        store: Store,
        encoder: Encoder,
        weights: Weights | None = None,
        *,
        index: str | ExactIndex = "auto",
        graph_path: str | None = None,
    ) -> None:
        """``index``: ``auto``, ``exact``, ``hnsw`` or an index object; ``graph_path``: where an
        HNSW graph is saved on :meth:`close` and reused at the next start if still current."""
        self.store = store
        self.encoder: Encoder = LockedEncoder(encoder)
        self.weights = weights or Weights()
        self.model = encoder.name
        self.user_template = UserTemplate()
        self.index = make_index(index, encoder.dim) if isinstance(index, str) else index
        self.graph_path = graph_path
        self.items: dict[str, Item] = {}
        self.users: dict[str, _UserState] = {}
        self._by_attribute: dict[str, dict[str, set[str]]] = {}
        self._users_of: dict[str, set[str]] = {}  # item id -> users with an interaction on it
        self._seq = 0
        self._lock = ReadWriteLock()
        self._words = WordVectors(encoder)
        self.ready = False

    # ---- start-up -------------------------------------------------------------------------
    def load(self) -> Engine:
        """Rebuild memory from the store; encode (and store) only what has no vector yet."""
        with self.store.transaction() as session:
            self.store.register_model(session, self.model, self.encoder.config(), self.encoder.dim)
        items = self.store.items()
        stored = self.store.vectors("item", self.model)
        missing = [i for i in items if i.item_id not in stored]
        if missing:
            vectors = self.encoder.encode([item_text(i) for i in missing], kind="passage")
            with self.store.transaction() as session:
                self.store.put_vectors(
                    session, "item", self.model, [i.item_id for i in missing], vectors
                )
            stored.update(zip([i.item_id for i in missing], vectors))
        if items:
            ids, vectors = [i.item_id for i in items], np.stack([stored[i.item_id] for i in items])
            if isinstance(self.index, HNSWIndex) and not len(self.index):
                graph = self._graph_file(len(ids))
                if not self.index.add_all(ids, vectors, graph) and graph:
                    self.index.save_graph(graph)  # built now: a crash before close keeps it
            else:
                self.index.add(ids, vectors)
        for item in items:
            self._remember_item(item)
        self._load_users()
        self.ready = True
        return self

    def _graph_file(self, n_items: int) -> str | None:
        """Where to keep the graph: only catalogues big enough to be searched by graph."""
        big = isinstance(self.index, HNSWIndex) and n_items >= self.index.exact_below
        return self.graph_path if big else None

    def close(self) -> None:
        """Stop answering; save the HNSW graph (if any) so the next start can skip building it."""
        self.ready = False
        with self._lock.write():
            graph = self._graph_file(len(self.index))
            if isinstance(self.index, HNSWIndex) and graph:
                self.index.save_graph(graph)

    def _load_users(self) -> None:
        vectors = {kind: self.store.vectors(kind, self.model) for kind in _USER_KINDS}
        for user in self.store.users():
            state = _UserState(user)
            state.text_vector = vectors["user_text"].get(user.user_id)
            state.attribute_vector = vectors["user_attributes"].get(user.user_id)
            state.vector = vectors["user"].get(user.user_id)
            self.users[user.user_id] = state
        for inter in self.store.interactions():
            state = self.users.setdefault(inter.user_id, _UserState(User(inter.user_id)))
            state.interactions[inter.interaction_id] = (self._next_seq(), inter)
            self._users_of.setdefault(inter.item_id, set()).add(inter.user_id)
        stale = [s for s in self.users.values() if s.vector is None or self._needs_parts(s)]
        if stale:
            self._encode_profiles(stale)
            for state in stale:
                state.vector = self._combine(state)
            with self.store.transaction() as session:
                self._save_user_vectors(session, stale)

    def _needs_parts(self, state: _UserState) -> bool:
        has_text = bool(state.user.text.strip())
        return (has_text and state.text_vector is None) or (
            bool(self._render_attributes(state.user.attributes)) and state.attribute_vector is None
        )

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ---- items ----------------------------------------------------------------------------
    def upsert_items(self, items: Sequence[Item]) -> None:
        """Add or replace items; they are recommendable when this returns.

        Items identical to the stored ones are left alone (no encoding, no write). Users who
        interacted with a changed item get their vectors rebuilt from its new vector.
        """
        items = [
            i for i in {i.item_id: i for i in items}.values() if self.items.get(i.item_id) != i
        ]
        if not items:
            return
        vectors = self.encoder.encode([item_text(i) for i in items], kind="passage")
        ids = [i.item_id for i in items]
        with self._lock.write():
            with self.store.transaction() as session:
                self.store.upsert_items(session, items)
                self.store.put_vectors(session, "item", self.model, ids, vectors)
            for item in items:
                self._forget_item_attributes(item.item_id)
                self._remember_item(item)
            self.index.add(ids, vectors)
            self._refresh_users_of(ids)

    def delete_item(self, item_id: str) -> None:
        with self._lock.write():
            if item_id not in self.items:
                raise NotFoundError("item", item_id)
            with self.store.transaction() as session:
                self.store.delete_items(session, [item_id])
            self._forget_item_attributes(item_id)
            del self.items[item_id]
            self.index.remove([item_id])
            self._refresh_users_of([item_id])

    def _refresh_users_of(self, item_ids: Sequence[str]) -> None:
        """Rebuild the vectors of users who interacted with changed or deleted items, so a user's
        vector always agrees with the items as they are now (and with an explained request)."""
        user_ids = set().union(*(self._users_of.get(i, set()) for i in item_ids))
        states = [self.users[u].copy() for u in sorted(user_ids) if u in self.users]
        if states:
            self._commit_user_changes(states)

    def get_item(self, item_id: str) -> Item:
        try:
            return self.items[item_id]
        except KeyError:
            raise NotFoundError("item", item_id) from None

    def _remember_item(self, item: Item) -> None:
        self.items[item.item_id] = item
        for key, value in item.attributes.items():
            values = self._by_attribute.setdefault(key, {})
            for v in _attribute_values(value):
                values.setdefault(v, set()).add(item.item_id)

    def _forget_item_attributes(self, item_id: str) -> None:
        old = self.items.get(item_id)
        if old is None:
            return
        for key, value in old.attributes.items():
            for v in _attribute_values(value):
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
    def _render_attributes(self, attributes: Mapping[str, Any]) -> str:
        return self.user_template.render_attributes(attributes)

    def _encode_profiles(self, states: Sequence[_UserState]) -> None:
        """Encode the text and attribute parts of many users in one batched call."""
        texts: list[str] = []
        slots: list[tuple[_UserState, str]] = []
        for state in states:
            state.text_vector = state.attribute_vector = None
            for name, text in (
                ("text_vector", state.user.text.strip()),
                ("attribute_vector", self._render_attributes(state.user.attributes)),
            ):
                if text:
                    texts.append(text)
                    slots.append((state, name))
        if texts:
            vectors = self.encoder.encode(texts, kind="query")
            for (state, name), vector in zip(slots, vectors):
                setattr(state, name, vector)

    def _liked_part(self, ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        known = [i for i in ids if self.index.contains(i)]
        rows = self.index.ids.rows(known)
        return known, self.index.vectors[rows] if len(rows) else np.zeros((0, self.index.dim))

    def _parts(
        self,
        text_vector: np.ndarray | None,
        attribute_vector: np.ndarray | None,
        liked: Sequence[str],
        disliked: Sequence[str],
    ) -> dict[str, tuple[float, np.ndarray]]:
        w = self.weights
        parts: dict[str, tuple[float, np.ndarray]] = {}
        if text_vector is not None:
            parts["text"] = (w.text, text_vector)
        if attribute_vector is not None:
            parts["attributes"] = (w.attributes, attribute_vector)
        for name, ids, weight in (("liked", liked, w.liked), ("disliked", disliked, -w.disliked)):
            _, vectors = self._liked_part(ids)
            if len(vectors):
                parts[name] = (weight, liked_vector(vectors, w.recency_decay))
        return parts

    def _combine(self, state: _UserState) -> np.ndarray:
        liked, disliked = state.liked_and_disliked()
        parts = self._parts(state.text_vector, state.attribute_vector, liked, disliked)
        return combine_parts(list(parts.values()), self.index.dim)

    def _save_user_vectors(
        self, session: Any, states: Sequence[_UserState], kinds: Iterable[str] | None = None
    ) -> None:
        """Store the ``kinds`` of vectors of ``states``; a missing vector deletes the stored one
        (``put_vectors`` replaces the present ones). All kinds unless told."""
        for kind in kinds or _USER_KINDS:
            pairs = [(s.user.user_id, getattr(s, _USER_KINDS[kind])) for s in states]
            absent = [u for u, v in pairs if v is None]
            if absent:
                self.store.delete_vectors(session, kind, absent, model=self.model)
            present = [(u, v) for u, v in pairs if v is not None]
            if present:
                self.store.put_vectors(
                    session,
                    kind,
                    self.model,
                    [u for u, _ in present],
                    np.stack([v for _, v in present]),
                )

    def upsert_users(self, users: Sequence[User]) -> None:
        """Add or replace users' text and attributes; their interactions stay."""
        users = list({u.user_id: u for u in users}.values())
        if not users:
            return
        states = [_UserState(user) for user in users]
        self._encode_profiles(states)  # before the lock, as items are: searches keep running
        with self._lock.write():
            for state in states:
                old = self.users.get(state.user.user_id)
                state.interactions = dict(old.interactions) if old else {}
                state.vector = self._combine(state)
            with self.store.transaction() as session:
                self.store.upsert_users(session, users)
                self._save_user_vectors(session, states)
            for state in states:
                self.users[state.user.user_id] = state

    def get_user(self, user_id: str) -> tuple[User, list[Interaction]]:
        with self._lock.read():
            state = self.users.get(user_id)
            if state is None:
                raise NotFoundError("user", user_id)
            return state.user, state.history()

    def forget_user(self, user_id: str) -> None:
        """Remove the user's profile, attributes, interactions and vectors everywhere."""
        with self._lock.write():
            if user_id not in self.users:
                raise NotFoundError("user", user_id)
            with self.store.transaction() as session:
                self.store.forget_user(session, user_id)
            self._track_items(user_id, self.users.pop(user_id).seen(), set())

    # ---- interactions ---------------------------------------------------------------------
    def add_interactions(self, interactions: Sequence[Interaction]) -> None:
        """Store interactions (feedback included) and update each user's vector at once.

        Users not seen before are created; unknown items make the whole call fail.
        """
        with self._lock.write():
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

    def delete_interaction(self, interaction_id: str) -> None:
        with self._lock.write():
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
        for state in states:
            state.vector = self._combine(state)
        new_users = [s.user for s in states if s.user.user_id not in self.users]
        with self.store.transaction() as session:
            self.store.upsert_users(session, new_users)
            self.store.upsert_interactions(session, interactions)
            self.store.delete_interactions(session, deleted)
            # interactions change only the combined vector; text and attribute parts stay
            self._save_user_vectors(session, states, kinds=("user",))
        for state in states:
            old = self.users.get(state.user.user_id)
            self._track_items(state.user.user_id, old.seen() if old else set(), state.seen())
            self.users[state.user.user_id] = state

    def _track_items(self, user_id: str, before: set[str], after: set[str]) -> None:
        for item_id in before - after:
            self._users_of.get(item_id, set()).discard(user_id)
        for item_id in after - before:
            self._users_of.setdefault(item_id, set()).add(user_id)

    # ---- recommending ---------------------------------------------------------------------
    def _check_items(self, ids: Iterable[str], field_name: str) -> None:
        for item_id in ids:
            if item_id not in self.items:
                raise NotFoundError("item", item_id)

    def _query_parts(self, query: Query) -> tuple[Parts, set[str]]:
        """The user's parts for this request, and the items they have seen."""
        state = self.users.get(query.user_id) if query.user_id else None
        if query.user_id and state is None:
            raise NotFoundError("user", query.user_id)
        text_vector = state.text_vector if state else None
        text = (state.user.text if state else "") or ""
        if query.text and query.text.strip():
            text = query.text.strip()
            text_vector = self.encoder.encode([text], kind="query")[0]
        attributes = dict(state.user.attributes) if state else {}
        attribute_vector = state.attribute_vector if state else None
        if query.attributes:
            attributes.update(query.attributes)
            rendered = self._render_attributes(attributes)
            attribute_vector = (
                self.encoder.encode([rendered], kind="query")[0] if rendered else None
            )
        liked, disliked = state.liked_and_disliked() if state else ([], [])
        liked = list(dict.fromkeys([*liked, *query.liked]))
        seen = (state.seen() if state else set()) | set(query.liked)
        parts = Parts(self._parts(text_vector, attribute_vector, liked, disliked))
        quoted = attributes if query.quote_profile else query.attributes
        parts.attributes = summarize_attributes(quoted)
        if query.explain:
            said = text if query.quote_profile else (query.text or "").strip()
            parts.keywords = keywords(said) if said else []
            parts.keyword_vectors = self._words(parts.keywords) if parts.keywords else None
            known, vectors = self._liked_part(liked if query.quote_profile else list(query.liked))
            parts.liked_ids, parts.liked_vectors = known, vectors if len(known) else None
            parts.liked_titles = [self.items[i].title for i in known]
        return parts, seen

    def _allowed(self, query: Query) -> set[str] | None:
        allowed = set(query.allowed_ids) if query.allowed_ids is not None else None
        for key, values in query.filters.items():
            index = self._by_attribute.get(key, {})
            matching: set[str] = set()
            for value in values:
                matching |= index.get(str(value), set())
            allowed = matching if allowed is None else allowed & matching
        return allowed

    def recommend(self, query: Query) -> list[Recommendation]:
        """Top-``k`` items for any mix of user id, text, attributes and liked items."""
        with self._lock.read():
            return self._recommend(query)

    def recommend_now(self, query: Query) -> list[Recommendation] | None:
        """:meth:`recommend`, if it can be answered at once without blocking; else ``None``.

        At once means: from stored vectors only (a known user or liked items; no text,
        attributes or explanations, which run the encoder), with no filters or allowed ids, on
        an index whose search is quick, and while no write holds or waits for the lock. The
        service answers such requests on its event loop and sends the rest to worker threads.
        """
        if query.text or query.attributes or query.explain or query.filters:
            return None
        if query.allowed_ids is not None or not self.index.quick:
            return None
        with self._lock.try_read() as free:
            return self._recommend(query) if free else None

    def _recommend(self, query: Query) -> list[Recommendation]:
        """The body of :meth:`recommend`; the caller holds the read lock."""
        self._check_items(query.liked, "liked")
        fast = (
            query.user_id is not None
            and not query.explain
            and not (query.text or query.attributes or query.liked)
            and query.user_id in self.users
        )
        if fast:
            state = self.users[str(query.user_id)]
            vector = state.vector
            seen = state.seen()
            parts = None
        else:
            parts, seen = self._query_parts(query)
            vector = combine_parts(list(parts.weighted.values()), self.index.dim)
        if vector is None or not np.any(vector):
            raise ValueError(
                "nothing is known about this user yet: give text, attributes or liked items"
            )
        exclude = set(query.excluded_ids) | (seen if query.exclude_seen else set())
        ids, scores = self.index.search(
            vector[None, :], query.k, exclude=[exclude], allowed=self._allowed(query)
        )
        out = []
        for item_id, score in zip(ids[0], scores[0]):
            item = self.items[item_id]
            explanation = None
            if parts is not None and query.explain:
                row = self.index.vectors[self.index.ids.row(item_id)]
                explanation = explain(parts, row, item_text(item))
            out.append(Recommendation(item, float(score), explanation))
        return out

    def similar_items(self, item_id: str, k: int = 10) -> list[Recommendation]:
        """Items whose text vectors are closest to ``item_id``'s."""
        with self._lock.read():
            if item_id not in self.items:
                raise NotFoundError("item", item_id)
            vector = self.index.vectors[self.index.ids.row(item_id)]
            ids, scores = self.index.search(vector[None, :], k, exclude=[[item_id]])
            words = set(keywords(plain_text(self.items[item_id]), limit=64))
            out = []
            for other, score in zip(ids[0], scores[0]):
                shared = [w for w in keywords(plain_text(self.items[other]), 64) if w in words]
                title = self.items[item_id].title
                quoted = ", ".join(f"“{w}”" for w in shared[:4])
                text = (
                    f"Shares {quoted} with “{title}”."
                    if shared
                    else f"Described much like “{title}”."
                )
                out.append(Recommendation(self.items[other], float(score), Explanation(text)))
            return out

    def users_for_item(self, item_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Known users whose vectors are closest to an item (who a new item would reach)."""
        with self._lock.read():
            vector = self.index.vectors[self.index.ids.row(self.get_item(item_id).item_id)]
            pairs = [
                (u, float(s.vector @ vector)) for u, s in self.users.items() if s.vector is not None
            ]
            return sorted(pairs, key=lambda p: -p[1])[:k]

    def stats(self) -> dict[str, int]:
        return {"items": len(self.index), "users": len(self.users)}


_USER_KINDS = {"user_text": "text_vector", "user_attributes": "attribute_vector", "user": "vector"}


def now() -> float:
    return time.time()
