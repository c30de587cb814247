"""Similar items (by their text vectors) and the users an item would reach."""

from __future__ import annotations

from coldbrew.live.answers import Answer, Recommendation
from coldbrew.live.errors import NotFoundError
from coldbrew.live.queries import user_query
from coldbrew.live.state import Live
from coldbrew.models.query import UserQuery


def similar_items(live: Live, item_id: str, k: int = 10) -> Answer:
    """Items whose text vectors are closest to ``item_id``'s."""
    with live.lock.read():
        if item_id not in live.items:
            raise NotFoundError("item", item_id)
        vector = live.index.row_vectors([live.index.ids.row(item_id)])
        ids, scores = live.index.search(vector, k, exclude=[[item_id]])
        recs = [
            Recommendation(live.items[o], float(s), live.explainer.similar(item_id, o))
            for o, s in zip(ids[0], scores[0])
        ]
        return Answer(recs, live.info.version, live.info.kind)


def users_for_item(live: Live, item_id: str, k: int = 10) -> list[tuple[str, float]]:
    """Known users the served model ranks ``item_id`` highest for (who it would reach)."""
    with live.lock.read():
        live.get_item(item_id)
        model = live.model
        if model is None:
            return []
        pairs: list[tuple[str, float]] = []
        queries = [(u, user_query(live, UserQuery(user_id=u))[0]) for u in sorted(live.users)]
        queries = [(u, q) for u, q in queries if not q.is_empty()]
        row = model.item_ids.row(item_id)
        for start in range(0, len(queries), 256):
            batch = queries[start : start + 256]
            scores = model.score([q for _, q in batch])[:, row]
            pairs.extend((u, float(s)) for (u, _), s in zip(batch, scores))
        return sorted(pairs, key=lambda p: -p[1])[:k]
