"""Explanations that say why the served model ranked an item, and claim nothing false.

The reason comes from the part of the model that contributed most to the item's score (the
blend's real contributions, shown beside the text): collaborative parts cite the liked item most
similar to it in their own space ("people who liked A also liked this"); the language model cites
the liked item closest in meaning, or what the user wrote; the lexical part and the language
model quote a user's word only when that word occurs in the item's text; popularity names the
attribute value among whose users the item is most popular. Chinese is cut into words by jieba.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.context import context_sentence, describe_features
from coldbrew.models.sequence import harmonic_weights
from coldbrew.serve.records import item_text
from coldbrew.text.encoder import tokenize

if TYPE_CHECKING:
    from coldbrew.serve.engine import Engine, Recommendation

LM_PARTS = ("text", "attributes", "liked", "context")
"""The parts of a language model's user vector (:meth:`ZeroShotRecommender.user_parts`)."""
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
# Chinese words that carry no topic of their own (jieba keeps them as words)
CHINESE_STOPWORDS = frozenset(
    "需要 想要 喜欢 一件 一本 一个 一些 适合 什么 可以 我们 你们 他们 这个 那个 好看".split()  # noqa: SIM905
)
MAX_VALUE = 40
MAX_ATTRIBUTES = 4


@cache
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def keywords(text: str, limit: int = MAX_KEYWORDS) -> list[str]:
    """Content words of ``text``: Latin words minus stop words, Chinese words cut by jieba."""
    words: list[str] = []
    for run in _CJK_RUN.findall(text):
        words.extend(w for w in _jieba().lcut(run) if len(w) > 1 and w not in CHINESE_STOPWORDS)
    words.extend(t for t in tokenize(_CJK_RUN.sub(" ", text)) if len(t) > 2 and t not in STOPWORDS)
    return list(dict.fromkeys(words))[:limit]


def occurring(words: Sequence[str], text: str) -> list[str]:
    """The ``words`` that occur in ``text`` (Latin words as whole tokens, Chinese as written)."""
    tokens = set(tokenize(_CJK_RUN.sub(" ", text)))
    return [w for w in words if (w in text if _CJK_RUN.fullmatch(w) else w.lower() in tokens)]


@dataclass
class Explanation:
    """Why one item was recommended."""

    text: str
    parts: dict[str, float] = field(default_factory=dict)
    words: list[tuple[str, float]] = field(default_factory=list)
    liked: list[tuple[str, str, float]] = field(default_factory=list)


MAX_ATTRIBUTE_QUOTE = 160


def summarize_attributes(attributes: Mapping[str, Any], limit: int = MAX_ATTRIBUTE_QUOTE) -> str:
    """``key: value, ...`` for an explanation, cut at ``limit`` characters (with "…"), so an
    explanation never echoes a long input back once per recommended item."""
    text = ", ".join(f"{k}: {v}" for k, v in attributes.items())
    return text if len(text) <= limit else text[: limit - 1].rstrip(", ") + "…"


def _quote(values: Sequence[str]) -> str:
    return ", ".join(f"“{v}”" for v in values)


def _short(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def family(kind: str) -> str:
    """What kind of reason a model (or a part of one) gives."""
    if kind in ("als", "context_als", "bpr", "itemknn", "lightfm"):
        return "cf"
    if kind in ("tfidf",):
        return "lexical"
    if kind in ("popularity", "attribute_popularity", "random"):
        return "popularity"
    if kind == "cf_map":
        return "cf_map"
    if kind == "transitions":
        return "sequence"
    if kind == "context_popularity":
        return "context"
    return "lm"


def _closest(vectors: np.ndarray, row: int, rows: np.ndarray) -> tuple[int, float]:
    """Which of ``rows`` is closest (cosine) to ``row``, and how close."""
    v = vectors[row].astype(np.float32)  # a compact index keeps float16 or int8 rows
    others = vectors[rows].astype(np.float32)
    sims = others @ v / np.maximum(np.linalg.norm(others, axis=1) * np.linalg.norm(v), 1e-12)
    best = int(np.argmax(sims))
    return int(rows[best]), float(sims[best])


class Explainer:
    """Puts the served model's reasons for an engine's recommendations into words."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def explain(
        self,
        model: Recommender,
        query: UserQuery,
        recs: list[Recommendation],
        quotable: UserQuery | None = None,
        *,
        subset: bool = False,
    ) -> None:
        """Set ``explanation`` on each of ``recs`` (ranked by ``model`` for ``query``).

        The reasons come from the whole query; the sentences quote only ``quotable`` (the
        words, attributes and liked items a caller may see: by default all of ``query``).
        ``subset``: the items were ranked by scoring candidates (:meth:`Recommender.score_rows`),
        so their parts are computed that way too, for them alone."""
        resolved = model.resolve(query)
        said = resolved if quotable is None else quotable
        rows = model.item_ids.rows([r.item.item_id for r in recs])
        contributions = model.contributions([resolved], rows if subset else None)
        columns = np.arange(len(rows)) if subset else rows
        parts = getattr(model, "parts", None)
        for rec, row, column in zip(recs, rows, columns):
            shares = {name: round(float(c[0, column]), 4) for name, c in contributions.items()}
            top = max(shares, key=lambda n: shares[n])
            part = parts[top] if isinstance(parts, Mapping) else model
            out = Explanation(text="", parts=shares)
            self._reason(out, part, top, resolved, said, int(row), rec)
            if not out.liked and said.liked:  # the liked item closest in meaning, as data
                self._closest_liked(out, said, rec)
            rec.explanation = out

    def _closest_liked(self, out: Explanation, query: UserQuery, rec: Recommendation) -> None:
        index = self.engine.index
        liked = [i for i in query.liked if index.contains(i)]
        if not liked or not index.contains(rec.item.item_id):
            return
        rows = index.ids.rows(liked)
        best, similarity = _closest(index.vectors, index.ids.row(rec.item.item_id), rows)
        item_id = index.ids.id(best)
        out.liked = [(item_id, self.engine.items[item_id].title, round(similarity, 4))]

    def _reason(
        self,
        out: Explanation,
        part: Recommender,
        name: str,
        query: UserQuery,
        said: UserQuery,
        row: int,
        rec: Recommendation,
    ) -> None:
        """Put into words why ``part`` scored ``row`` for ``query``, quoting only ``said``."""
        kind = family(part.kind) if name not in LM_PARTS else "lm"
        if kind == "lm":
            sub = name if name in LM_PARTS else self._lm_part(part, query, row)
            if sub == "text":
                self._words(out, said, rec, "Close in meaning to what you wrote.")
            elif sub == "liked":
                self._liked(
                    out,
                    part,
                    "item_vectors",
                    said,
                    row,
                    "Close in meaning to {}, which you liked.",
                )
            elif sub == "context":
                words = context_sentence(said.context)
                said_it = f"your context: {words}" if words else "the context you asked in"
                out.text = f"Close in meaning to {said_it}."
            else:
                self._profile(out, said)
        elif kind == "lexical":
            self._words(out, said, rec, "")
            if not out.text:
                self._shared_words(out, said, rec)
        elif kind in ("cf", "cf_map") and query.liked:
            sentence = (
                "People who liked {} also liked this."
                if kind == "cf"
                else "Described like what people who liked {} went on to like."
            )
            if getattr(part, "similarity", None) is not None:  # item-item neighbours
                liked = part.item_ids.rows(said.liked, skip_unknown=True)
                self._neighbour(out, part.similarity, part, liked, row, sentence)  # type: ignore[attr-defined]
            else:
                self._liked(out, part, "item_factors", said, row, sentence)
        elif kind == "sequence" and query.liked:
            recent = part.recent_rows(said)  # type: ignore[attr-defined]
            self._neighbour(
                out,
                part.transitions,  # type: ignore[attr-defined]
                part,
                recent,
                row,
                "People who liked {} went on to like this.",
                harmonic_weights(len(recent)),
            )
        elif kind == "cf_map":  # no history: the user's words or profile, mapped into CF space
            if query.text:
                self._words(out, said, rec, "Close in meaning to what you wrote.")
            else:
                self._profile(out, said)
        elif kind == "context":
            self._in_context(out, part, said, row)
        else:
            self._popular(out, part, said, row)

    def _lm_part(self, part: Recommender, query: UserQuery, row: int) -> str:
        """Which of the user's text, attributes, history and context moved a language model
        most."""
        sub = part.contributions([query], np.asarray([row]))  # this item only
        return max(sub, key=lambda n: float(sub[n][0, 0])) if sub else "text"

    def _words(
        self, out: Explanation, query: UserQuery, rec: Recommendation, fallback: str
    ) -> None:
        found = occurring(keywords(query.text or ""), item_text(rec.item))[:4]
        out.words = [(w, 1.0) for w in found]
        out.text = f"Matches your words {_quote(found)}." if found else fallback

    def _liked(
        self,
        out: Explanation,
        part: Recommender,
        space: str,
        query: UserQuery,
        row: int,
        sentence: str,
    ) -> None:
        vectors = getattr(part, space, None)
        liked = part.item_ids.rows(query.liked, skip_unknown=True)
        if vectors is None or not len(liked) or row >= len(vectors):
            out.text = out.text or "Close to what you liked before."
            return
        liked = liked[liked < len(vectors)]
        if not len(liked):
            out.text = "Close to what you liked."
            return
        best, similarity = _closest(np.asarray(vectors), row, liked)
        self._cite(out, part.item_ids.id(best), similarity, sentence)

    def _cite(self, out: Explanation, item_id: str, similarity: float, sentence: str) -> None:
        """Name the liked ``item_id`` (by title) as the reason, with how close it is."""
        title = self.engine.items[item_id].title if item_id in self.engine.items else item_id
        out.liked = [(item_id, title, round(similarity, 4))]
        out.text = sentence.format(f"“{_short(title)}”")

    def _neighbour(
        self,
        out: Explanation,
        links: Any,
        part: Recommender,
        liked: np.ndarray,
        row: int,
        sentence: str,
        weights: np.ndarray | None = None,
    ) -> None:
        """The liked item (of rows ``liked``) whose learned link to ``row`` (``links``, an item ×
        item sparse matrix: similarities, or what came next with ``weights`` per liked row)
        added most to its score. What came next is cited as a share: of what followed that
        item, how much was this one."""
        keep = liked < links.shape[0]
        liked = liked[keep]
        sims = np.asarray(links[liked][:, [row]].todense()).ravel() if len(liked) else liked
        if not len(liked) or sims.max() <= 0:
            out.text = out.text or "Close to what you liked before."
            return
        added = sims if weights is None else sims * weights[keep]
        best = int(np.argmax(added))
        value = float(sims[best])
        if weights is not None:
            value /= max(float(links[liked[best]].sum()), 1e-12)
        self._cite(out, part.item_ids.id(int(liked[best])), value, sentence)

    def _shared_words(self, out: Explanation, query: UserQuery, rec: Recommendation) -> None:
        own = keywords(item_text(rec.item), limit=64)
        best: tuple[list[str], str] = ([], "")
        for item_id in query.liked:
            item = self.engine.items.get(item_id)
            if item is None:
                continue
            shared = occurring(own, item_text(item))
            if len(shared) > len(best[0]):
                best = (shared, item.title)
        if best[0]:
            out.text = f"Shares {_quote(best[0][:3])} with “{_short(best[1])}”, which you liked."
        else:
            out.text = "Worded like what you asked for."

    def _profile(self, out: Explanation, query: UserQuery) -> None:
        attributes = dict(list(query.attributes.items())[:MAX_ATTRIBUTES])
        described = summarize_attributes({_short(k): _short(v) for k, v in attributes.items()})
        out.text = f"Suits your profile ({described})." if described else "Suits your profile."

    def _popular(self, out: Explanation, part: Recommender, query: UserQuery, row: int) -> None:
        lifts = getattr(part, "lifts", None)
        best = None
        if callable(lifts) and query.attributes:
            ranked = sorted(lifts(query.attributes, row), key=lambda t: -t[2])
            best = ranked[0] if ranked and ranked[0][2] > 1.0 else None
        if best is not None:
            out.text = f"Popular with users who share your {_short(best[0])}: {_short(best[1])}."
        else:
            out.text = "Popular with everyone right now."

    def _in_context(self, out: Explanation, part: Recommender, query: UserQuery, row: int) -> None:
        """The features of the request's context under which the item sells more than overall
        ("Popular on Saturday mornings in France.")."""
        lifts = getattr(part, "context_lifts", None)
        found = lifts(query.context, row) if callable(lifts) else []
        words = describe_features({f: v for f, v, lift in found if lift > 1.0})
        out.text = f"Popular {words}." if words else "Popular with everyone right now."

    def similar(self, item_id: str, other: str) -> Explanation:
        """Why ``other`` is like ``item_id``: the words they share, else their meaning."""
        items = self.engine.items
        shared = occurring(keywords(item_text(items[item_id]), limit=64), item_text(items[other]))
        title = _short(items[item_id].title)
        if shared:
            return Explanation(f"Shares {_quote(shared[:4])} with “{title}”.")
        return Explanation(f"Described much like “{title}”.")
