"""Training pairs from interactions: (what is known about a user, an item they liked).

The user side is another item from the same user's history (item-to-item, which matches how a
fitted model builds a user vector from liked items) or the user's profile (free text and
attributes rendered as text). Augmentation drops and shuffles the parts of the user side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coldbrew.data.schema import ITEM_ID, Dataset
from coldbrew.text.templates import ItemTemplate, UserTemplate

SEPARATOR = ". "


@dataclass(frozen=True)
class TrainingPair:
    """One positive: ``query`` (the user side, in parts) should score ``item`` highly."""

    query_parts: tuple[str, ...]
    item: str
    item_id: str
    anchor_id: str = ""

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
                pairs.append(TrainingPair(profiles[user], texts[item], item))
                continue
            if history == "profile" or len(liked) < 2:
                continue
            other = liked[(pos + 1 + int(rng.integers(len(liked) - 1))) % len(liked)]
            anchor = tuple(p for p in texts[other].split(SEPARATOR) if p)
            pairs.append(TrainingPair(anchor, texts[item], item, other))
    if attribute_pairs:
        attributes = _attribute_texts(dataset, user_template or UserTemplate())
        for user, liked in sorted(dataset.user_history().items()):
            if user in attributes:
                query = (attributes[user],)
                pairs.extend(TrainingPair(query, texts[i], i) for i in liked if i in texts)
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
