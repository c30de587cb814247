"""Training pairs from interactions: (what is known about a user, an item they liked).

The user side is another item from the same user's history (item-to-item, which matches how a
fitted model builds a user vector from liked items) or the user's profile (free text and
attributes rendered as text). Augmentation drops and shuffles the parts of the user side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from coldbrew.data.schema import ITEM_ID, Dataset
from coldbrew.text.templates import ItemTemplate, UserTemplate

SEPARATOR = ". "


@dataclass(frozen=True)
class TrainingPair:
    """One positive: ``query`` (the user side, in parts) should score ``item`` highly.

    ``user_id`` is whose interaction it is; ``negatives`` are mined hard negatives, as
    (item id, text) pairs (see :func:`mine_hard_negatives`).
    """

    query_parts: tuple[str, ...]
    item: str
    item_id: str
    anchor_id: str = ""
    user_id: str = ""
    negatives: tuple[tuple[str, str], ...] = ()

    @property
    def query(self) -> str:
        return SEPARATOR.join(self.query_parts)


def item_texts(dataset: Dataset, template: ItemTemplate) -> dict[str, str]:
    ids = dataset.items[ITEM_ID].astype(str).tolist()
    return dict(zip(ids, template.render_frame(dataset.items)))


def _profile_parts(dataset: Dataset, template: UserTemplate) -> dict[str, tuple[str, ...]]:
    """Each user's free text, then their rendered attributes one per part."""
    spec = dataset.spec
    out: dict[str, tuple[str, ...]] = {}
    if dataset.users.empty:
        return out
    attributes = _attribute_texts(dataset, template)
    for row in dataset.users.to_dict(orient="records"):
        user = str(row["user_id"])
        text = " ".join(str(row[f]) for f in spec.user_text if isinstance(row.get(f), str))
        parts = [text.strip()] if text.strip() else []
        parts.extend(p.strip() for p in attributes.get(user, "").split(", ") if p.strip())
        if parts:
            out[user] = tuple(parts)
    return out


def _attribute_texts(dataset: Dataset, template: UserTemplate) -> dict[str, str]:
    """Each user's attributes rendered as the zero-shot model renders a query's attributes."""
    if dataset.users.empty:
        return {}
    out: dict[str, str] = {}
    for row in dataset.users.to_dict(orient="records"):
        attrs = {f: row[f] for f in dataset.spec.user_attributes if f in row}
        rendered = template.render_attributes(attrs)
        if rendered:
            out[str(row["user_id"])] = rendered
    return out


def build_pairs(
    dataset: Dataset,
    *,
    item_template: ItemTemplate,
    user_template: UserTemplate | None = None,
    history: str = "item",
    max_pairs: int = 0,
    seed: int = 42,
    attribute_pairs: bool = False,
) -> list[TrainingPair]:
    """One pair per positive interaction of ``dataset`` (subsampled to ``max_pairs`` if > 0).

    With ``history="item"`` the user side is another item the same user liked, drawn at random
    (users with a single item are skipped); ``"profile"`` uses their text and attributes;
    ``"both"`` picks one of the two at random where both exist. ``attribute_pairs`` adds, for
    every positive of a user with attributes, one more pair whose user side is those attributes
    alone (one part, the text a k=0 cold-user query is encoded from).
    """
    if history not in ("item", "profile", "both"):
        raise ValueError(f"history must be item, profile or both, got {history!r}")
    rng = np.random.default_rng(seed)
    texts = item_texts(dataset, item_template)
    profiles = _profile_parts(dataset, user_template or UserTemplate()) if history != "item" else {}
    pairs: list[TrainingPair] = []
    for user, liked in sorted(dataset.user_history().items()):
        liked = [i for i in liked if i in texts]
        for pos, item in enumerate(liked):
            use_profile = history == "profile" or (history == "both" and rng.random() < 0.5)
            if use_profile and user in profiles:
                pairs.append(TrainingPair(profiles[user], texts[item], item, user_id=user))
                continue
            if history == "profile" or len(liked) < 2:
                continue
            other = liked[(pos + 1 + int(rng.integers(len(liked) - 1))) % len(liked)]
            anchor = tuple(p for p in texts[other].split(SEPARATOR) if p)
            pairs.append(TrainingPair(anchor, texts[item], item, other, user))
    if attribute_pairs:
        attributes = _attribute_texts(dataset, user_template or UserTemplate())
        for user, liked in sorted(dataset.user_history().items()):
            if user in attributes:
                query = (attributes[user],)
                pairs.extend(
                    TrainingPair(query, texts[i], i, user_id=user) for i in liked if i in texts
                )
    if max_pairs and len(pairs) > max_pairs:
        keep = np.sort(rng.choice(len(pairs), size=max_pairs, replace=False))
        pairs = [pairs[i] for i in keep]
    return pairs


def catalogue_pairs(
    dataset: Dataset, template: ItemTemplate, *, items: str = "train"
) -> list[TrainingPair]:
    """Self-pairs for domain adaptation: each item's text (in parts) against its full text.

    ``items="train"`` keeps the items that have interactions in ``dataset``; ``"catalogue"``
    every item.
    """
    if items not in ("train", "catalogue"):
        raise ValueError(f"items must be train or catalogue, got {items!r}")
    keep = set(dataset.interactions[ITEM_ID].astype(str)) if items == "train" else None
    return [
        TrainingPair(tuple(p for p in text.split(SEPARATOR) if p) or (text,), text, item_id)
        for item_id, text in item_texts(dataset, template).items()
        if text.strip() and (keep is None or item_id in keep)
    ]


def augment_parts(
    parts: tuple[str, ...], rng: np.random.Generator, drop: float = 0.3
) -> tuple[str, ...]:
    """Field dropout and shuffled order: the first part (title or own words) always stays."""
    if len(parts) < 2:
        return parts
    rest = [p for p in parts[1:] if rng.random() >= drop]
    order = rng.permutation(len(rest))
    return (parts[0], *(rest[i] for i in order))


def mine_hard_negatives(
    pairs: Sequence[TrainingPair],
    dataset: Dataset,
    template: ItemTemplate,
    encode: Callable[[list[str]], np.ndarray],
    *,
    count: int,
    skip: int = 5,
    depth: int = 50,
    seed: int = 42,
) -> list[TrainingPair]:
    """``pairs`` with ``count`` hard negatives each: items with interactions in ``dataset`` that
    the starting encoder ranks high for the pair's user side but that user never liked.

    ``encode`` maps texts to unit vectors (the encoder being fine-tuned, before training). For
    every distinct user side the items are ranked by cosine; the user's own positives and the
    anchor are dropped, the ``skip`` closest left are passed over (the very closest are the
    likeliest to be unlabelled positives) and ``count`` are drawn from the rest of the top
    ``depth``.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if depth <= skip + count:
        raise ValueError(f"depth ({depth}) must exceed skip + count ({skip + count})")
    # only items with interactions in ``dataset``: new items without any (a cold-item split's
    # held-out items) may be exactly what a user would like next
    trained = set(dataset.interactions[ITEM_ID].astype(str))
    texts = {i: t for i, t in item_texts(dataset, template).items() if i in trained}
    ids = list(texts)
    item_vectors = encode([texts[i] for i in ids])
    queries = sorted({p.query for p in pairs})
    row = {q: r for r, q in enumerate(queries)}
    ranked = _top_items(encode(queries), item_vectors, depth + 256)
    liked = {u: set(h) for u, h in dataset.user_history().items()}
    rng = np.random.default_rng([seed, 11])
    out = []
    for pair in pairs:
        banned = liked.get(pair.user_id, set()) | {pair.item_id, pair.anchor_id}
        pool: list[str] = []
        for col in ranked[row[pair.query]]:
            if ids[col] not in banned:
                pool.append(ids[col])
                if len(pool) == depth:
                    break
        pool = pool[skip:]
        chosen = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
        negatives = tuple((pool[c], texts[pool[c]]) for c in sorted(chosen))
        out.append(replace(pair, negatives=negatives))
    return out


def _top_items(queries: np.ndarray, items: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Each query's ``k`` most similar item rows, best first (chunked: catalogues are large)."""
    k = min(k, len(items))
    out = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ items.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return out
