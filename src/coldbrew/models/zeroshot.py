"""The zero-shot language-model recommender: every cold-start mode from text vectors alone.

Items are encoded from their rendered text. A user vector is the weighted sum of whatever is
known, each part a unit vector: their own words, their attributes rendered as text, the
recency-weighted mean of the vectors of the items they liked, and (with a ``context_weight``)
the context the request carried, in words. Scores are cosines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.idmap import IdMap
from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models.base import ModelNotFittedError, Recommender, UserQuery
from coldbrew.models.context import check_context_weight, context_sentence
from coldbrew.models.reasons import Reason, ReasonKind, closest_liked
from coldbrew.store.rows import as_rows, empty_rows, same_rows
from coldbrew.text.cache import EmbeddingCache, encode_texts
from coldbrew.text.encoder import Encoder, l2_normalize
from coldbrew.text.factory import load_encoder
from coldbrew.text.language import centre_by_script, group_means, script_groups
from coldbrew.text.templates import ItemTemplate, UserTemplate

ATTRIBUTE_MEMORY = 50_000
"""How many distinct rendered attribute and context sentences a model remembers the vectors of."""


def recency_weights(n: int, decay: float) -> np.ndarray:
    """Weights for ``n`` items, oldest first: the newest weighs 1, each older one ``decay`` less."""
    return decay ** np.arange(n - 1, -1, -1, dtype=np.float32)


def liked_vector(item_vectors: np.ndarray, decay: float) -> np.ndarray:
    """The unit, recency-weighted mean of liked items' vectors (rows oldest first)."""
    if not len(item_vectors):
        return np.zeros(item_vectors.shape[-1], dtype=np.float32)
    weights = recency_weights(len(item_vectors), decay)
    return l2_normalize(weights @ item_vectors)


def combine_parts(parts: Sequence[tuple[float, np.ndarray]], dim: int) -> np.ndarray:
    """A user's unit vector: the weighted sum of the unit vectors of what is known about them."""
    out = np.zeros(dim, dtype=np.float32)
    for weight, vector in parts:
        out += np.float32(weight) * vector
    unit: np.ndarray = l2_normalize(out[None, :])[0]
    return unit


def set_rows(array: np.ndarray, size: int, rows: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``array`` grown (with zero rows) to ``size`` rows if shorter, with ``rows`` set to
    ``vectors``: item vectors after items were added (the array keeps its element type)."""
    if size > len(array):
        dtype = array.dtype if array.size else np.float32
        grown = empty_rows(size, vectors.shape[1], dtype)
        grown[: len(array)] = array
        array = grown
    array[rows] = vectors
    return array


def product(users: np.ndarray, items: np.ndarray, block: int = 65_536) -> np.ndarray:
    """``users @ items.T`` in float32, a block of float16 item rows at a time (numpy has no
    fast half-precision product; a float32 matrix is multiplied directly)."""
    if items.dtype == np.float32:
        scores: np.ndarray = users @ items.T
        return scores
    out = np.empty((len(users), len(items)), dtype=np.float32)
    for start in range(0, len(items), block):
        out[:, start : start + block] = users @ items[start : start + block].astype(np.float32).T
    return out


VECTOR_DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8}
"""How item vectors may be held: float32, float16, or int8 with one scale a row
(:class:`~coldbrew.store.rows.Int8Rows`, as a compact index holds them to share its rows)."""
USER_PARTS = ("text", "attributes", "liked", "context")
"""The parts of a user vector (:meth:`ZeroShotRecommender.user_parts`)."""
PART_REASONS: dict[str, ReasonKind] = {"text": "text", "context": "context"}


class ZeroShotRecommender(Recommender):
    """Ranks items by cosine between a user vector and item text vectors.

    Parameters
    ----------
    encoder
        Any :class:`~coldbrew.text.Encoder` (injected).
    text_weight, attribute_weight, liked_weight, disliked_weight
        How much each known part of a user contributes to their vector (disliked items pull
        it away from them).
    recency_decay
        Per-step decay of older liked items (1.0: plain mean).
    context_weight
        How much the query's context in words (:func:`~coldbrew.models.context.context_sentence`:
        its free ``text`` and "Saturday morning in summer, in France") adds to the user vector;
        0 (the default) reads no context. The hybrid chooses it on its inner validation.
    center_languages
        In a catalogue that mixes CJK and other texts (at least five items each), subtract
        each script's mean item vector from item and query vectors, so one liked Chinese item
        does not turn the whole list Chinese (:func:`~coldbrew.text.language.centre_by_script`).
    vector_dtype
        ``float32``, or ``float16`` to hold item vectors in half the memory (a million 384-d
        items: 0.77 GB instead of 1.5 GB), or ``int8`` with one scale a row (0.39 GB); scores
        are computed in float32 either way.
    item_template, user_template
        How items and users are written as text (``None``: the item's text fields as the
        dataset names them; :class:`~coldbrew.text.templates.UserTemplate`'s defaults).
    cache_dir
        Where item vectors are cached between runs (``None``: no cache); not saved.
    show_progress
        Show a progress bar while encoding; not saved.
    """

    kind = "zeroshot"
    runtime_arguments: ClassVar[tuple[str, ...]] = ("cache_dir", "show_progress")

    def __init__(
        self,
        encoder: Encoder,
        *,
        text_weight: float = 1.0,
        attribute_weight: float = 0.5,
        liked_weight: float = 1.0,
        disliked_weight: float = 0.5,
        recency_decay: float = 0.9,
        context_weight: float = 0.0,
        center_languages: bool = True,
        vector_dtype: str = "float32",
        item_template: ItemTemplate | None = None,
        user_template: UserTemplate | None = None,
        cache_dir: str | None = None,
        show_progress: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 < recency_decay <= 1.0:
            raise ValueError(f"recency_decay must be in (0, 1], got {recency_decay}")
        if vector_dtype not in VECTOR_DTYPES:
            raise ValueError(
                f"vector_dtype must be one of {', '.join(VECTOR_DTYPES)}, got {vector_dtype!r}"
            )
        self.vector_dtype = vector_dtype
        self.encoder = encoder
        self.text_weight = text_weight
        self.attribute_weight = attribute_weight
        self.liked_weight = liked_weight
        self.disliked_weight = disliked_weight
        self.recency_decay = recency_decay
        self.context_weight = check_context_weight(context_weight)
        self.item_template = item_template
        self.user_template = user_template or UserTemplate()
        self.cache_dir = cache_dir
        self.show_progress = show_progress
        self.center_languages = center_languages
        self.item_vectors = np.zeros((0, 0), dtype=np.float32)
        self.language_means = np.zeros((0, 0), dtype=np.float32)
        self._attribute_vectors: dict[str, np.ndarray] = {}

    @classmethod
    def _from_params(cls, params: Mapping[str, Any], **components: Any) -> Self:
        params = dict(params)
        encoder = components.get("encoder") or load_encoder(params.pop("encoder"))
        params.pop("encoder", None)
        item_tpl = params.pop("item_template")
        user_tpl = params.pop("user_template")
        return cls(
            encoder,
            item_template=None
            if item_tpl is None
            else ItemTemplate(
                text_fields=tuple(item_tpl["text_fields"]),
                attribute_fields=tuple(item_tpl["attribute_fields"]),
                labels=item_tpl["labels"],
                max_chars=item_tpl["max_chars"],
            ),
            user_template=UserTemplate(
                text_fields=tuple(user_tpl["text_fields"]),
                attribute_fields=tuple(user_tpl["attribute_fields"]),
                phrases=user_tpl["phrases"],
                prefix=user_tpl["prefix"],
            ),
            cache_dir=components.get("cache_dir"),
            **params,
        )

    # ---- fitting ------------------------------------------------------------------------
    def _template_for(self, spec: DatasetSpec) -> ItemTemplate:
        if self.item_template is None:
            self.item_template = ItemTemplate(spec.item_text, spec.item_attributes)
        return self.item_template

    def _encode_items(self, items: pd.DataFrame) -> np.ndarray:
        if self.item_template is None:
            raise ModelNotFittedError(
                f"{type(self).__name__} is not fitted: call fit(dataset) first"
            )
        texts = self.item_template.render_frame(items)
        cache = EmbeddingCache(self.cache_dir) if self.cache_dir else None
        vectors = encode_texts(
            self.encoder, texts, kind="passage", cache=cache, show_progress=self.show_progress
        )
        return centre_by_script(vectors, texts, self.language_means)

    def _read_spec(self, spec: DatasetSpec) -> None:
        """The templates a fit on a dataset of ``spec`` reads items and users with."""
        self._template_for(spec)
        if not self.user_template.attribute_fields and spec.user_attributes:
            self.user_template = UserTemplate(
                text_fields=spec.user_text or ("text",),
                attribute_fields=spec.user_attributes,
                phrases=self.user_template.phrases,
                prefix=self.user_template.prefix,
            )
        self.language_means = np.zeros((0, 0), dtype=np.float32)
        self._attribute_vectors = {}

    def _fit(self, dataset: Dataset) -> None:
        self._read_spec(dataset.spec)
        vectors = self._encode_items(dataset.items)
        if self.center_languages:
            texts = self._template_for(dataset.spec).render_frame(dataset.items)
            self.language_means = group_means(vectors, script_groups(texts))
            vectors = centre_by_script(vectors, texts, self.language_means)
        self.item_vectors = as_rows(vectors, VECTOR_DTYPES[self.vector_dtype])

    def fit_rows(
        self,
        spec: DatasetSpec,
        item_ids: Sequence[str],
        profiles: dict[str, dict[str, Any]],
        rows: Any,
    ) -> Self:
        """:meth:`fit` on a dataset of ``spec`` without its frames: its items named by
        ``item_ids`` with their vectors handed in rather than encoded, its users' ``profiles``
        (as :func:`~coldbrew.models.users.users_of` reads them), no events. ``rows`` holds one
        row per item, in order (a numpy matrix or :class:`~coldbrew.store.rows.Int8Rows`, held
        as they are where they already have :attr:`vector_dtype`), the very vectors the
        encoder gives their rendered texts — a service's index rows of its stored vectors: a
        restarted service builds no frame (and imports no pandas). Nothing is centred by
        script: the caller hands rows only for a catalogue in which
        :func:`~coldbrew.text.language.group_means` would find one script.

        Raises
        ------
        ValueError
            If there are no items, or ``rows`` has not one row per item.
        """
        if not len(item_ids):
            raise ValueError(f"dataset {spec.name!r} has no items to recommend")
        if len(rows) != len(item_ids):
            raise ValueError(f"{len(rows)} rows given for {len(item_ids)} items")
        self._start_fit(IdMap(item_ids), {}, profiles)
        self._read_spec(spec)
        self.item_vectors = as_rows(rows, VECTOR_DTYPES[self.vector_dtype])
        self._fitted, self._fitted_on = True, None
        return self

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        self.item_vectors = set_rows(
            self.item_vectors, len(self.item_ids), rows, self._encode_items(items)
        )

    def share_item_vectors(
        self, matrix: np.ndarray, rows: np.ndarray | None = None, ids: IdMap | None = None
    ) -> bool:
        """Hold ``matrix`` as the item vectors instead of an own copy (a service's index keeps
        the very same rows: a million float16 rows are 0.77 GB each, int8 rows 0.37 GB), if it
        holds exactly the same values; with ``rows``, only those are compared (the rows
        changed since the last share). Returns whether it is shared now; a later
        :meth:`add_items` that grows the catalogue makes an own copy again. ``ids``: the rows'
        id map, held instead of the model's own when it lists the same ids in the same order
        (the owner adds new ids to it before :meth:`add_items`)."""
        check = slice(None) if rows is None else rows
        if not same_rows(matrix, self.item_vectors, check):
            return False
        self.item_vectors = matrix
        if ids is not None and ids.same_order(self.item_ids):
            self.item_ids = ids  # a million ids' rows held once
        return True

    # ---- scoring ------------------------------------------------------------------------
    def user_vectors(self, queries: Sequence[UserQuery]) -> np.ndarray:
        """One unit vector per (resolved) query; all-zero when nothing is known. One query's
        is remembered: a large catalogue's request asks for it twice (the item index's search,
        then the candidates' scores)."""
        if len(queries) == 1:
            return self._remembered.get(repr(queries[0]), lambda: self._user_vectors(queries))
        return self._user_vectors(queries)

    def _user_vectors(self, queries: Sequence[UserQuery]) -> np.ndarray:
        parts = self.user_parts(queries)
        total = sum(parts.values(), np.zeros((len(queries), self.dim), dtype=np.float32))
        return l2_normalize(total)

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1])

    def user_parts(self, queries: Sequence[UserQuery]) -> dict[str, np.ndarray]:
        """The weighted, unnormalised vectors of what is known per query: the user's own words
        (``text``), their attributes, their liked minus disliked items (``liked``) and, with a
        :attr:`context_weight`, the context the query carried (``context``)."""
        text = np.zeros((len(queries), self.dim), dtype=np.float32)
        pairs = [(q, x.text) for q, x in enumerate(queries) if x.text and x.text.strip()]
        if pairs:
            vectors = self._query_vectors([t for _, t in pairs])
            text[[q for q, _ in pairs]] = self.text_weight * vectors
        history = np.stack([self.history_part(q) for q in queries]) if queries else text
        parts = {"text": text, "attributes": self.attribute_part(queries), "liked": history}
        if self.context_weight > 0:
            parts["context"] = self.context_part(queries)
        return parts

    def context_part(self, queries: Sequence[UserQuery]) -> np.ndarray:
        """The weighted vectors of the queries' contexts in words (zero where a query carries
        none), whatever :attr:`context_weight` is."""
        out = np.zeros((len(queries), self.dim), dtype=np.float32)
        pairs = [(q, context_sentence(query.context)) for q, query in enumerate(queries)]
        pairs = [(q, t) for q, t in pairs if t]
        if pairs:
            vectors = self._sentence_vectors([t for _, t in pairs])
            out[[q for q, _ in pairs]] = self.context_weight * vectors
        return out

    def attribute_part(self, queries: Sequence[UserQuery]) -> np.ndarray:
        """The weighted vectors of the queries' attributes rendered as text."""
        out = np.zeros((len(queries), self.dim), dtype=np.float32)
        pairs = [
            (q, self.user_template.render_attributes(query.attributes))
            for q, query in enumerate(queries)
            if query.attributes
        ]
        pairs = [(q, t) for q, t in pairs if t]
        if pairs:
            vectors = self._sentence_vectors([t for _, t in pairs])
            out[[q for q, _ in pairs]] = self.attribute_weight * vectors
        return out

    def _sentence_vectors(self, texts: list[str]) -> np.ndarray:
        """:meth:`_query_vectors` of rendered attributes or contexts, each distinct sentence
        encoded once per fit (up to :data:`ATTRIBUTE_MEMORY` of them): users share attribute
        combinations and contexts, and a query should not wait for the encoder to re-read
        "age: 25-34, job: writer" or "Saturday morning in summer, in France"."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._attribute_vectors]
        if missing:
            if len(self._attribute_vectors) + len(missing) > ATTRIBUTE_MEMORY:
                self._attribute_vectors.clear()
            self._attribute_vectors.update(zip(missing, self._query_vectors(missing)))
        return np.stack([self._attribute_vectors[t] for t in texts])

    def contributions(
        self, queries: Sequence[UserQuery], rows: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Each part's share of every item's cosine (of the item ``rows`` only, if given):
        ``(part . item) / |sum of parts|``, so the shares of an item add up to its score."""
        parts = self.user_parts(queries)
        total = sum(parts.values(), np.zeros((len(queries), self.dim), dtype=np.float32))
        norms = np.linalg.norm(total, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        items = self.item_vectors if rows is None else self.item_vectors[rows]
        return {name: product(p / norms, items) for name, p in parts.items()}

    def history_part(self, query: UserQuery) -> np.ndarray:
        """The weighted recency means of the liked items' vectors minus the disliked ones'."""
        side = self.liked_item_vectors
        out = np.zeros(side.shape[1], dtype=np.float32)
        signed = ((query.liked, self.liked_weight), (query.disliked, -self.disliked_weight))
        for ids, weight in signed:
            rows = self.item_ids.rows(ids, skip_unknown=True)
            if len(rows):
                liked = side[rows].astype(np.float32, copy=False)
                out += np.float32(weight) * liked_vector(liked, self.recency_decay)
        return out

    def _query_vectors(self, texts: list[str]) -> np.ndarray:
        """The user's texts encoded, centred like the items when one encoder reads both."""
        vectors = self.query_encoder.encode(texts, kind="query")
        if self.query_encoder is not self.encoder:
            return vectors
        return centre_by_script(vectors, texts, self.language_means)

    @property
    def query_encoder(self) -> Encoder:
        """What encodes the user's own words and attributes (the one encoder, unless a
        two-tower model has a separate user tower)."""
        return self.encoder

    @property
    def liked_item_vectors(self) -> np.ndarray:
        """Item vectors as the user side sees them (liked items are averaged into a user)."""
        return self.item_vectors

    def text_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The item ``rows``' unit text vectors, float32."""
        return np.asarray(self.item_vectors[rows], dtype=np.float32)

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """By the part of the user vector that moved ``row`` most (``part`` itself, when it
        is one): the liked item closest in meaning, else the words, context or profile."""
        sub = part if part in USER_PARTS else self._top_user_part(query, row)
        if sub == "liked":
            return closest_liked(self.item_ids, self.item_vectors, quotable.liked, row, "meaning")
        return Reason(PART_REASONS.get(sub, "profile"))

    def _top_user_part(self, query: UserQuery, row: int) -> str:
        """Which of the user's text, attributes, history and context moved item ``row`` most."""
        sub = self.contributions([query], np.asarray([row]))
        return max(sub, key=lambda n: float(sub[n][0, 0])) if sub else "text"

    def item_fields(self) -> tuple[str, ...]:
        template = self.item_template
        return () if template is None else (*template.text_fields, *template.attribute_fields)

    def encoders(self) -> list[Encoder]:
        query = self.query_encoder
        return [query] if query is self.encoder else [query, self.encoder]

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        return product(self.user_vectors(queries), self.item_vectors)

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        return product(self.user_vectors(queries), self.item_vectors[rows])

    def _score_beside(
        self, queries: Sequence[UserQuery], rows: np.ndarray, reference: np.ndarray
    ) -> np.ndarray:
        """The ``reference`` rows' vectors are gathered once per model state, not at every
        request (at 100k items, gathering 2,000 scattered rows cost more than scoring them)."""
        users = self.user_vectors(queries)
        block = self._remembered.get(
            reference.tobytes(), lambda: self.item_vectors[reference], slot="reference"
        )
        return np.hstack([product(users, self.item_vectors[rows]), product(users, block)])

    def _get_state(self) -> dict[str, np.ndarray]:
        vectors = np.asarray(self.item_vectors)  # int8 rows are saved decoded
        return {"item_vectors": vectors, "language_means": self.language_means}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._remembered.forget()
        self.item_vectors = as_rows(arrays["item_vectors"], VECTOR_DTYPES[self.vector_dtype])
        empty = np.zeros((0, self.item_vectors.shape[1]), dtype=np.float32)
        self.language_means = arrays.get("language_means", empty).astype(np.float32)
        self._attribute_vectors = {}
