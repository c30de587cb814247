"""Readable explanations: which of a user's words and liked items made an item score.

A user vector is ``u = s / |s|`` with ``s = sum_p w_p e_p`` over the parts known about the user
(their text, attributes, liked and disliked items), so an item's score ``u . v`` splits exactly
into one contribution per part, ``w_p (e_p . v) / |s|``. Within the text part, each keyword is
encoded on its own and ranked by its cosine to the item.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coldbrew.text.encoder import Encoder, tokenize

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "have",
        "i",
        "i'm",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "some",
        "that",
        "the",
        "their",
        "them",
        "this",
        "to",
        "was",
        "we",
        "with",
        "you",
        "your",
        "want",
        "need",
        "like",
        "looking",
        "something",
        "good",
        "would",
        "really",
        "very",
        "just",
    }
)
MAX_KEYWORDS = 16
# Chinese function characters: a bigram holding one is rarely a content word
STOPCHARS = frozenset("的了是我你他她它在和与有个要想找一这那很都也就吗呢吧啊本些点给让把被")


def keywords(text: str, limit: int = MAX_KEYWORDS) -> list[str]:
    """Content words of ``text``: Latin words minus stop words, Chinese as character bigrams."""
    words: list[str] = []
    for run in _CJK_RUN.findall(text):
        grams = [run[i : i + 2] for i in range(max(1, len(run) - 1))]
        words.extend(g for g in grams if not STOPCHARS.intersection(g))
    words.extend(t for t in tokenize(_CJK_RUN.sub(" ", text)) if len(t) > 2 and t not in STOPWORDS)
    return list(dict.fromkeys(words))[:limit]


class WordVectors:
    """Keyword vectors from the service's encoder, remembered (LRU) across requests."""

    def __init__(self, encoder: Encoder, capacity: int = 20_000) -> None:
        self.encoder = encoder
        self.capacity = capacity
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        with self._lock:  # searches run concurrently; the cache is shared
            return self._vectors(words)

    def _vectors(self, words: Sequence[str]) -> np.ndarray:
        missing = [w for w in dict.fromkeys(words) if w not in self._cache]
        if missing:
            for word, vector in zip(missing, self.encoder.encode(missing, kind="query")):
                self._cache[word] = vector
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        for word in words:
            self._cache.move_to_end(word)
        if not words:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self._cache[w] for w in words])


@dataclass
class Explanation:
    """Why one item was recommended."""

    text: str
    parts: dict[str, float] = field(default_factory=dict)
    words: list[tuple[str, float]] = field(default_factory=list)
    liked: list[tuple[str, str, float]] = field(default_factory=list)


@dataclass
class Parts:
    """The unit vectors known about a user, with their weights, and the keywords of their text."""

    weighted: dict[str, tuple[float, np.ndarray]]
    keywords: list[str] = field(default_factory=list)
    keyword_vectors: np.ndarray | None = None
    liked_ids: list[str] = field(default_factory=list)
    liked_vectors: np.ndarray | None = None
    liked_titles: list[str] = field(default_factory=list)
    attributes: str = ""

    def norm(self) -> float:
        total = sum(w * v for w, v in self.weighted.values())
        return float(np.linalg.norm(total)) if len(self.weighted) else 0.0


MAX_ATTRIBUTE_QUOTE = 160


def summarize_attributes(attributes: Mapping[str, Any], limit: int = MAX_ATTRIBUTE_QUOTE) -> str:
    """``key: value, ...`` for an explanation, cut at ``limit`` characters (with "…"), so an
    explanation never echoes a long input back once per recommended item."""
    text = ", ".join(f"{k}: {v}" for k, v in attributes.items())
    return text if len(text) <= limit else text[: limit - 1].rstrip(", ") + "…"


def _quote(values: Sequence[str]) -> str:
    return ", ".join(f"“{v}”" for v in values)


def _words(parts: Parts, item_vector: np.ndarray, item_text: str) -> tuple[list[Any], str]:
    """The user's keywords closest to the item (at least half as close as the best one)."""
    if parts.keyword_vectors is None or not len(parts.keywords):
        return [], ""
    sims = parts.keyword_vectors @ item_vector
    # encoders differ in how spread their cosines are (e5's all sit near 0.8), so a word is kept
    # when it is closer to the item than the user's average word, not by a fixed threshold
    floor = float(sims.mean()) if len(sims) > 1 else 0.0
    order = [i for i in np.argsort(-sims)[:3] if sims[i] > 0.05 and sims[i] >= floor]
    words = [(parts.keywords[i], round(float(sims[i]), 4)) for i in order]
    if not words:
        return [], ""
    lowered = item_text.lower()
    literal = [w for w, _ in words if w.lower() in lowered]
    sentence = f"matches your words {_quote([w for w, _ in words])}"
    if literal:
        sentence += f" (in its text: {_quote(literal)})"
    return words, sentence


def explain(parts: Parts, item_vector: np.ndarray, item_text: str) -> Explanation:
    """Split an item's score into the parts of the user and name the words/items behind it.

    A part is put into words only when it carries at least a fifth of the largest part's share.
    """
    norm = parts.norm() or 1.0
    contributions = {
        name: round(float(w * (v @ item_vector) / norm), 4)
        for name, (w, v) in parts.weighted.items()
    }
    out = Explanation(text="", parts=contributions)
    top = max([c for c in contributions.values() if c > 0], default=0.0)
    sentences: list[tuple[float, str]] = []
    out.words, sentence = _words(parts, item_vector, item_text)
    if sentence:
        sentences.append((contributions.get("text", 0.0), sentence))
    if parts.liked_vectors is not None and len(parts.liked_ids):
        sims = parts.liked_vectors @ item_vector
        order = np.argsort(-sims)[:2]
        out.liked = [
            (parts.liked_ids[i], parts.liked_titles[i], round(float(sims[i]), 4)) for i in order
        ]
        closest = _quote([t for _, t, s in out.liked if s >= 0.5 * out.liked[0][2]])
        sentences.append((contributions.get("liked", 0.0), f"close to {closest}, which you liked"))
    if parts.attributes:
        sentences.append(
            (contributions.get("attributes", 0.0), f"suits your profile ({parts.attributes})")
        )
    kept = [text for share, text in sorted(sentences, key=lambda p: -p[0]) if share >= 0.2 * top]
    if contributions.get("disliked", 0.0) < -0.05:
        kept.append("ranked lower for resembling items you disliked")
    joined = "; ".join(kept) or "the closest match to what we know about you"
    out.text = joined[0].upper() + joined[1:] + "."
    return out
