"""Explanations that say why the served model ranked an item, and claim nothing false.

Each model says why it scored an item (:meth:`Recommender.explain`, a typed
:class:`~coldbrew.models.reasons.Reason`); this module only puts the reasons into words. The
reason comes from the part of the model that contributed most to the item's score (the blend's
real contributions, shown beside the text): collaborative parts cite the liked item most
similar to it in their own space ("people who liked A also liked this"); the language model cites
the liked item closest in meaning, or what the user wrote; the lexical part and the language
model quote a user's word only when that word occurs in the item's text; popularity names the
attribute value among whose users the item is most popular. Chinese is cut into words by jieba.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Protocol

from coldbrew.index import Index
from coldbrew.live.answers import Explanation, Recommendation
from coldbrew.live.catalog import ItemTable
from coldbrew.live.records import item_text
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.context import context_sentence, describe_features
from coldbrew.models.reasons import Reason, ReasonKind, closest
from coldbrew.text.encoder import tokenize


class Catalogue(Protocol):
    """What explanations read of the running recommender: its items and their index."""

    @property
    def items(self) -> ItemTable: ...

    @property
    def index(self) -> Index: ...


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


LIKED_SENTENCES: dict[ReasonKind, str] = {
    "meaning": "Close in meaning to {}, which you liked.",
    "also_liked": "People who liked {} also liked this.",
    "mapped": "Described like what people who liked {} went on to like.",
    "went_on": "People who liked {} went on to like this.",
}
"""What a model's reason that cites a liked item says (:data:`~.reasons.LIKED_KINDS`)."""
NO_REASON = "Popular with everyone right now."
"""What is said where the model gives no reason (as before the reasons were typed)."""


class Explainer:
    """Puts the served model's reasons (:meth:`Recommender.explain`) for an engine's
    recommendations into words."""

    def __init__(self, engine: Catalogue) -> None:
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
        said = model.resolve(query) if quotable is None else quotable
        item_ids = [r.item.item_id for r in recs]
        reasons = model.explain(query, item_ids, quotable=quotable, subset=subset)
        for rec, reason in zip(recs, reasons):
            out = Explanation(text="", parts=dict(reason.shares))
            self._say(out, reason, said, rec)
            if not out.liked and said.liked:  # the liked item closest in meaning, as data
                self._closest_liked(out, said, rec)
            rec.explanation = out

    def _closest_liked(self, out: Explanation, query: UserQuery, rec: Recommendation) -> None:
        index = self.engine.index
        liked = [i for i in query.liked if index.contains(i)]
        if not liked or not index.contains(rec.item.item_id):
            return
        rows = index.ids.rows(liked)
        best, similarity = closest(index.vectors, index.ids.row(rec.item.item_id), rows)
        item_id = index.ids.id(best)
        out.liked = [(item_id, self.engine.items[item_id].title, round(similarity, 4))]

    def _say(self, out: Explanation, reason: Reason, said: UserQuery, rec: Recommendation) -> None:
        """Put ``reason`` into words, quoting only ``said``."""
        kind = reason.kind
        if kind in LIKED_SENTENCES:
            self._cite(out, reason, LIKED_SENTENCES[kind])
        elif kind == "unlearned":
            out.text = "Close to what you liked."
        elif kind == "text":
            self._words(out, said, rec, "Close in meaning to what you wrote.")
        elif kind == "words":
            self._words(out, said, rec, "")
            if not out.text:
                self._shared_words(out, said, rec)
        elif kind == "context":
            words = context_sentence(said.context)
            said_it = f"your context: {words}" if words else "the context you asked in"
            out.text = f"Close in meaning to {said_it}."
        elif kind == "profile":
            self._profile(out, said)
        elif kind == "in_context":
            words = describe_features({f: v for f, v, _ in reason.features})
            out.text = f"Popular {words}." if words else NO_REASON
        elif kind == "popular" and reason.features:
            name, value, _ = reason.features[0]
            out.text = f"Popular with users who share your {_short(name)}: {_short(value)}."
        else:
            out.text = NO_REASON

    def _words(
        self, out: Explanation, query: UserQuery, rec: Recommendation, fallback: str
    ) -> None:
        found = occurring(keywords(query.text or ""), item_text(rec.item))[:4]
        out.words = [(w, 1.0) for w in found]
        out.text = f"Matches your words {_quote(found)}." if found else fallback

    def _cite(self, out: Explanation, reason: Reason, sentence: str) -> None:
        """Name the liked item the reason cites (by title), with how close it is."""
        item_id = reason.item_id
        if item_id is None:
            out.text = "Close to what you liked before."
            return
        title = self.engine.items[item_id].title if item_id in self.engine.items else item_id
        out.liked = [(item_id, title, round(reason.value, 4))]
        out.text = sentence.format(f"“{_short(title)}”")

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

    def similar(self, item_id: str, other: str) -> Explanation:
        """Why ``other`` is like ``item_id``: the words they share, else their meaning."""
        items = self.engine.items
        shared = occurring(keywords(item_text(items[item_id]), limit=64), item_text(items[other]))
        title = _short(items[item_id].title)
        if shared:
            return Explanation(f"Shares {_quote(shared[:4])} with “{title}”.")
        return Explanation(f"Described much like “{title}”.")
