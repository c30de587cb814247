"""Writes: items, users and interactions, into the store and then into memory.

Every write encodes first, then commits to the database in one transaction, then updates memory,
so a failed write changes nothing. Writes commit one at a time (``Live.commit``); only the memory
update holds searches back (the write lock), never the encoding or the commit. Replicas over one
PostgreSQL database (:mod:`coldbrew.live.fleet`) log each write in its transaction and apply the
others' writes by re-reading the rows they touched (``refresh_*``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from coldbrew.courtesy import paced
from coldbrew.index import make_index
from coldbrew.live import served
from coldbrew.live.errors import BatchError, NotFoundError, RowError
from coldbrew.live.records import POSITIVE_EVENTS, item_frame, item_text
from coldbrew.live.state import BOOTSTRAP, Live, UserState
from coldbrew.live.versions import VersionInfo
from coldbrew.store import Interaction, Item, User
from coldbrew.text.encoder import Encoder
from coldbrew.text.memo import MemoEncoder


def upsert_items(live: Live, items: Sequence[Item]) -> None:
    """Add or replace items; every part of the served model can recommend them when this
    returns. Items identical to the stored ones are left alone (no encoding, no write).
    They are encoded, and then put in memory (the index, the served model), in pieces of
    ``serving.write_chunk``, so searches wait for one piece at most, never for a batch."""
    unique = {i.item_id: i for i in items}.values()
    items = [i for i in paced(unique) if live.items.get(i.item_id) != i]
    if not items:
        return
    encoder, texts = live.encoder, [item_text(i) for i in items]
    vectors = live.stored_form(encoder.encode(texts, kind="passage"))
    ids = [i.item_id for i in items]
    with live.commit:
        if live.encoder is not encoder:  # a language switch (reencode) swapped it meanwhile
            vectors = live.stored_form(live.encoder.encode(texts, kind="passage"))
        with live.store.transaction() as session:
            live.store.upsert_items(session, items)
            live.store.put_vectors(session, "item", live.encoder_name, ids, vectors)
            live.changed(session, "items", ids)
        live.in_locked_pieces(len(items), lambda s: put_items(live, items[s], vectors[s]))
    if live.follower is not None:
        live.follower.check([f"{i.title} {i.description}" for i in items])


def put_items(live: Live, items: Sequence[Item], vectors: np.ndarray) -> None:
    """Items (and their vectors) into memory, the index and the served model."""
    for item in items:
        live.forget_item_attributes(item.item_id)
        live.remember_item(item)
    ids = [i.item_id for i in items]
    live.index.add(ids, vectors)
    if live.model is None:
        live.model = served.bootstrap(live)
    else:  # every part that reads text reads them now (their vectors are known)
        live.model.add_items(item_frame(items, live.fields))
        served.share_vectors(live, live.model, ids)


def reencode(live: Live, encoder: Encoder) -> None:
    """Serve ``encoder`` instead of the current one. Every item is encoded with it (and
    stored) while answers go on; then, under the write lock, the items written meanwhile
    are encoded too and the index, the encoder and the language model are swapped. A
    hybrid refits with the new encoder at once."""
    with live.lock.read():
        ids = list(live.items)
        digests = {i: live.items.digest(i) for i in ids}
        texts = [item_text(live.items[i]) for i in ids]
    vectors = _encode_and_store(live, encoder, ids, texts, register=True)
    # no write between its commit and its memory update (``_commit``) sees the swap
    with live.commit, live.lock.write():
        if not live.ready:
            return  # closed meanwhile
        rows = dict(zip(ids, vectors))
        late = [i for i in live.items if digests.get(i) != live.items.digest(i)]
        late_texts = [item_text(live.items[i]) for i in late]
        rows.update(zip(late, _encode_and_store(live, encoder, late, late_texts)))
        current = list(live.items)
        live.index = make_index(live.index_kind or "exact", encoder.dim, len(current))
        if current:
            live.index.add_all(current, np.stack([rows[i] for i in current]), None)
        live.encoder = MemoEncoder(encoder, live.stored_passage)
        live.encoder_name = encoder.name
        live.shared = False
        live.model = served.bootstrap(live)
        live.info = VersionInfo(version=BOOTSTRAP, kind="zeroshot")
    served.resume_refits(live)


def _encode_and_store(
    live: Live, encoder: Encoder, ids: Sequence[str], texts: Sequence[str], register: bool = False
) -> np.ndarray:
    vectors = np.zeros((0, encoder.dim), dtype=np.float32)
    if texts:
        vectors = live.stored_form(encoder.encode(list(texts), kind="passage"))
    with live.store.transaction() as session:
        if register:
            live.store.register_model(session, encoder.name, encoder.config(), encoder.dim)
        live.store.put_vectors(session, "item", encoder.name, ids, vectors)
    return vectors


def delete_item(live: Live, item_id: str) -> None:
    with live.commit:
        if item_id not in live.items:
            raise NotFoundError("item", item_id)
        with live.store.transaction() as session:
            live.store.delete_items(session, [item_id])
            live.changed(session, "items", [item_id])
        with live.lock.write():
            drop_items(live, [item_id])


def drop_items(live: Live, item_ids: Sequence[str]) -> None:
    for item_id in item_ids:
        live.forget_item_attributes(item_id)
        live.forget_text(item_id)
        del live.items[item_id]
    live.index.remove(list(item_ids))
    if live.model is not None:
        live.model.remove_items(list(item_ids))


def refresh_items(live: Live, item_ids: Sequence[str]) -> None:
    """Bring these items up to the database (another replica wrote them): changed ones are
    put with their stored vectors (never re-encoded), deleted ones dropped. The rows are
    read while local writes wait, so none can land between the read and its use."""
    with live.commit:
        found = {i.item_id: i for i in live.store.items_of(item_ids)}
        gone = [i for i in dict.fromkeys(item_ids) if i in live.items and i not in found]
        items = [i for i in found.values() if live.items.get(i.item_id) != i]
        stored = live.store.vectors_of("item", live.encoder_name, [i.item_id for i in items])
        missing = [i for i in items if i.item_id not in stored]
        if missing:  # stored by a replica with another encoder
            encoded = live.encoder.encode([item_text(i) for i in missing], kind="passage")
            stored.update(zip([i.item_id for i in missing], encoded))
        with live.lock.write():
            if gone:
                drop_items(live, gone)
            if items:
                put_items(live, items, np.stack([stored[i.item_id] for i in items]))


def upsert_users(live: Live, users: Sequence[User]) -> None:
    """Add or replace users' text and attributes; their interactions stay. Users identical
    to the stored ones are left alone (no lock, no write)."""
    users = [u for u in paced({u.user_id: u for u in users}.values()) if _changed_user(live, u)]
    if not users:
        return
    with live.commit:
        with live.store.transaction() as session:
            live.store.upsert_users(session, users)
            live.changed(session, "users", [u.user_id for u in users])
        live.in_locked_pieces(len(users), lambda s: _put_users(live, users[s]))


def _put_users(live: Live, users: Sequence[User]) -> None:
    """Users' profiles into memory, their interactions kept."""
    for user in users:
        old = live.users.get(user.user_id)
        interactions = dict(old.interactions) if old else {}
        live.users[user.user_id] = UserState(user, interactions)


def _changed_user(live: Live, user: User) -> bool:
    """Whether ``user`` is new, or differs from the stored profile."""
    state = live.users.get(user.user_id)
    return state is None or state.user != user


def forget_user(live: Live, user_id: str) -> None:
    """Remove the user's profile, attributes and interactions everywhere, now: from the
    database, from memory, from the served model and from its files (rewritten without
    them; every other version deleted). Since the model's other numbers learned from them
    too, a refit without them is forced (one running now is cancelled: it read them)."""
    with live.commit:
        if user_id not in live.users:
            raise NotFoundError("user", user_id)
        with live.store.transaction() as session:
            live.store.forget_user(session, user_id)
            live.changed(session, "users", [user_id])
            if live.fleet is not None:  # a trainer elected later still owes the refit
                live.fleet.forgot(session)
        with live.lock.write():
            forget_here(live, user_id)
    served.rewrite_served(live, share=True)
    served.refit_without_them(live)


def forget_here(live: Live, user_id: str) -> None:
    """The user out of memory and the served model (the caller holds the write lock)."""
    live.track_items(user_id, live.users.pop(user_id).seen(), set())
    if live.model is not None:
        live.model.forget_user(user_id)
    live.forgets += 1


def refresh_users(live: Live, user_ids: Sequence[str]) -> None:
    """Bring these users (profile and interactions) up to the database, where another
    replica wrote them; a user gone from it was forgotten there, and is forgotten here.
    The rows are read while local writes wait (see :func:`refresh_items`)."""
    forgot, added = False, [0, 0]  # new positive events, new events
    with live.commit:
        found = {u.user_id: u for u in live.store.users_of(user_ids)}
        history: dict[str, list[Interaction]] = {}
        for inter in live.store.interactions_of(list(found)):
            history.setdefault(inter.user_id, []).append(inter)
        with live.lock.write():
            for user_id in dict.fromkeys(user_ids):
                if user_id in found:
                    _refresh_user(live, found[user_id], history.get(user_id, []), added)
                elif user_id in live.users:
                    forget_here(live, user_id)
                    forgot = True
    if forgot:  # the replica that forgot them rewrote the fleet's copy
        served.rewrite_served(live, share=False)
        served.refit_without_them(live)
    elif live.refitter is not None and added[1]:
        live.refitter.added(added[0], added[1])


def _refresh_user(live: Live, user: User, history: list[Interaction], added: list[int]) -> None:
    old = live.users.get(user.user_id) or UserState(user)
    state = UserState(user)
    for inter in history:
        seq = old.interactions.get(inter.interaction_id, (None, None))[0]
        if seq is None:
            added[0] += inter.event in POSITIVE_EVENTS
            added[1] += 1
        state.interactions[inter.interaction_id] = (seq or live.next_seq(), inter)
    live.track_items(user.user_id, old.seen(), state.seen())
    live.users[user.user_id] = state


def add_interactions(live: Live, interactions: Sequence[Interaction]) -> None:
    """Store interactions (feedback included); each user's next answer reflects them.

    Users not seen before are created; unknown items make the whole call fail.
    """
    with live.commit:
        errors = [
            RowError(n, inter.interaction_id, "item_id", f"item {inter.item_id!r} not found")
            for n, inter in enumerate(interactions)
            if inter.item_id not in live.items
        ]
        if errors:
            raise BatchError(errors)
        changed: dict[str, UserState] = {}
        for inter in interactions:
            state = changed.get(inter.user_id)
            if state is None:
                old = live.users.get(inter.user_id) or UserState(User(inter.user_id))
                state = changed[inter.user_id] = old.copy()
            seq = state.interactions.get(inter.interaction_id, (None, None))[0]
            state.interactions[inter.interaction_id] = (seq or live.next_seq(), inter)
        _commit_user_changes(live, list(changed.values()), interactions=interactions)
    if live.refitter is not None:
        positives = sum(1 for i in interactions if i.event in POSITIVE_EVENTS)
        live.refitter.added(positives, len(interactions))


def delete_interaction(live: Live, interaction_id: str) -> None:
    with live.commit:
        for state in live.users.values():
            if interaction_id in state.interactions:
                new = state.copy()
                del new.interactions[interaction_id]
                _commit_user_changes(live, [new], deleted=[interaction_id])
                return
        raise NotFoundError("interaction", interaction_id)


def _commit_user_changes(
    live: Live,
    states: list[UserState],
    *,
    interactions: Sequence[Interaction] = (),
    deleted: Sequence[str] = (),
) -> None:
    """Commit, then update memory under the write lock (the caller holds ``_commit``)."""
    new_users = [s.user for s in states if s.user.user_id not in live.users]
    with live.store.transaction() as session:
        live.store.upsert_users(session, new_users)
        live.store.upsert_interactions(session, interactions)
        live.store.delete_interactions(session, deleted)
        live.changed(session, "users", [s.user.user_id for s in states])
    with live.lock.write():
        for state in states:
            old = live.users.get(state.user.user_id)
            live.track_items(state.user.user_id, old.seen() if old else set(), state.seen())
            live.users[state.user.user_id] = state
