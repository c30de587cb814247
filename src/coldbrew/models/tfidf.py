"""TF-IDF content similarity: the classic content-based baseline (and the words signal).

Items are rendered with the same :class:`~coldbrew.text.ItemTemplate` the language model reads
and turned into L2-normalised TF-IDF rows (scikit-learn's vectoriser with coldbrew's tokenizer,
so Chinese is split per character). A user is the weighted sum of their own words' TF-IDF row and
the recency-weighted mean of their liked items' rows; scores are cosines. A user with neither
(attributes only, or nothing) gets the popularity ranking, and :meth:`is_fallback` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from coldbrew.data.frames import pd
from coldbrew.data.schema import ITEM_ID, Dataset
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.cfbase import popularity_scores
from coldbrew.models.reasons import Reason
from coldbrew.models.zeroshot import recency_weights
from coldbrew.text.encoder import tokenize
from coldbrew.text.templates import ItemTemplate

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer


def normalize(matrix: Any, norm: str = "l2") -> Any:
    """scikit-learn's row normalisation, imported on first use: scikit-learn takes a second or
    more to import, and importing any model (every one is, with :mod:`coldbrew.models`) must not
    wait for it."""
    from sklearn.preprocessing import normalize as normalize_rows

    return normalize_rows(matrix, norm=norm)


class TfidfRecommender(Recommender):
    """Cosine between TF-IDF vectors of item text and a user profile.

    Parameters
    ----------
    max_features
        Vocabulary size (most frequent terms).
    min_df
        Ignore terms in fewer items than this.
    sublinear_tf
        Use ``1 + log(tf)``.
    text_weight, liked_weight
        Weights of the user's own words and of their liked items in the profile.
    recency_decay
        Per-step decay of older liked items (1.0: plain mean).
    text_fields, attribute_fields
        Item fields rendered as text (``None``: the dataset spec's, set at fit time).
    """

    kind = "tfidf"

    def __init__(
        self,
        *,
        max_features: int = 50_000,
        min_df: int = 1,
        sublinear_tf: bool = True,
        text_weight: float = 1.0,
        liked_weight: float = 1.0,
        recency_decay: float = 0.9,
        text_fields: Sequence[str] | None = None,
        attribute_fields: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 < recency_decay <= 1.0:
            raise ValueError(f"recency_decay must be in (0, 1], got {recency_decay}")
        self.max_features = max_features
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.text_weight = text_weight
        self.liked_weight = liked_weight
        self.recency_decay = recency_decay
        self.text_fields = tuple(text_fields) if text_fields is not None else None
        self.attribute_fields = tuple(attribute_fields) if attribute_fields is not None else None
        self.vectorizer: TfidfVectorizer | None = None
        self.item_matrix = sp.csr_matrix((0, 0), dtype=np.float32)
        self._counts = np.zeros(0, dtype=np.float32)

    # ---- text ---------------------------------------------------------------------------
    def _template(self) -> ItemTemplate:
        return ItemTemplate(self.text_fields or ("title",), self.attribute_fields or ())

    def _new_vectorizer(self, **extra: Any) -> TfidfVectorizer:
        from sklearn.feature_extraction.text import TfidfVectorizer  # see normalize

        return TfidfVectorizer(
            tokenizer=tokenize,
            lowercase=False,
            token_pattern=None,
            sublinear_tf=self.sublinear_tf,
            dtype=np.float32,
            **extra,
        )

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows of ``texts`` (unknown words are dropped)."""
        if self.vectorizer is None:
            raise ValueError("TfidfRecommender has no vocabulary yet: call fit(dataset) first")
        return sp.csr_matrix(self.vectorizer.transform(list(texts)), dtype=np.float32)

    @property
    def item_has_signal(self) -> np.ndarray:
        """Boolean per item row: does its text contain a known word?"""
        return np.asarray(self.item_matrix.getnnz(axis=1) > 0)

    # ---- fitting ------------------------------------------------------------------------
    def _fit(self, dataset: Dataset) -> None:
        if self.text_fields is None:
            self.text_fields = dataset.spec.item_text
        if self.attribute_fields is None:
            self.attribute_fields = dataset.spec.item_attributes
        texts = self._template().render_frame(dataset.items)
        min_df = min(self.min_df, len(texts))
        self.vectorizer = self._new_vectorizer(max_features=self.max_features, min_df=min_df)
        try:
            self.item_matrix = sp.csr_matrix(self.vectorizer.fit_transform(texts))
        except ValueError as exc:
            raise ValueError(f"no words in the item text of {dataset.name!r}: {exc}") from exc
        counts = dataset.positives()[ITEM_ID].astype(str).value_counts()
        self._counts = np.zeros(len(self.item_ids), dtype=np.float32)
        known = counts[counts.index.isin(set(self.item_ids))]
        self._counts[self.item_ids.rows(known.index)] = known.to_numpy(dtype=np.float32)

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        texts = self._template().render_frame(items)
        self._grow_vocabulary(texts)
        new = self.transform(texts)
        grow = len(self.item_ids) - self.item_matrix.shape[0]
        matrix = self.item_matrix
        if grow > 0:
            empty = sp.csr_matrix((grow, matrix.shape[1]), dtype=np.float32)
            matrix = sp.vstack([matrix, empty], format="csr")
            self._counts = np.concatenate([self._counts, np.zeros(grow, dtype=np.float32)])
        lil = matrix.tolil()
        for i, row in enumerate(rows):
            lil[int(row)] = new[i]
        self.item_matrix = lil.tocsr()

    def _grow_vocabulary(self, texts: Sequence[str]) -> None:
        """Words the new items bring get columns, with the smoothed IDF of a word found in only
        those items (``1 + ln((1 + n) / (1 + df))``, as at fit time), so a new item's own words
        find it before the next fit."""
        if self.vectorizer is None:
            raise ValueError("TfidfRecommender has no vocabulary yet: call fit(dataset) first")
        vocabulary = dict(self.vectorizer.vocabulary_)
        df: dict[str, int] = {}
        for text in texts:
            for word in set(tokenize(text)) - vocabulary.keys():
                df[word] = df.get(word, 0) + 1
        if not df:
            return
        n = len(self.item_ids)
        words = sorted(df)
        idf = np.concatenate(
            [self.vectorizer.idf_, [1.0 + np.log((1 + n) / (1 + df[w])) for w in words]]
        )
        for word in words:
            vocabulary[word] = len(vocabulary)
        self.vectorizer = self._new_vectorizer(vocabulary=vocabulary)
        self.vectorizer.idf_ = idf
        m = self.item_matrix
        self.item_matrix = sp.csr_matrix(
            (m.data, m.indices, m.indptr), shape=(m.shape[0], len(vocabulary)), dtype=np.float32
        )

    # ---- scoring ------------------------------------------------------------------------
    def user_matrix(self, queries: Sequence[UserQuery]) -> sp.csr_matrix:
        """One L2-normalised TF-IDF profile per (resolved) query; empty rows when nothing."""
        parts = []
        texts = [q.text if q.text and q.text.strip() else "" for q in queries]
        parts.append(self.text_weight * self.transform(texts))
        liked = sp.lil_matrix((len(queries), len(self.item_ids)), dtype=np.float32)
        for q, query in enumerate(queries):
            rows = self.item_ids.rows(query.liked, skip_unknown=True)
            for row, weight in zip(rows, recency_weights(len(rows), self.recency_decay)):
                liked[q, row] += weight
        profile = normalize(liked.tocsr() @ self.item_matrix)
        parts.append(self.liked_weight * profile)
        return sp.csr_matrix(normalize(parts[0] + parts[1]), dtype=np.float32)

    def is_fallback(self, query: UserQuery) -> bool:
        """True when ``query`` has no words the model knows and no liked item with words."""
        return int(self.user_matrix([self.resolve(query)]).nnz) == 0

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        return self._score_subset(queries, np.arange(len(self.item_ids)))

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        return Reason("words")

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        users = self.user_matrix(queries)
        items = self.item_matrix[rows]
        scores = np.asarray((users @ items.T).toarray(), dtype=np.float32)
        empty = users.getnnz(axis=1) == 0
        if empty.any():
            scores[empty] = popularity_scores(self._counts[rows], self.item_ids.ids(rows))
        return scores

    # ---- persistence --------------------------------------------------------------------
    def _get_state(self) -> dict[str, np.ndarray]:
        if self.vectorizer is None:
            raise ValueError("TfidfRecommender is not fitted")
        vocabulary = self.vectorizer.vocabulary_
        terms = sorted(vocabulary, key=vocabulary.__getitem__)
        m = self.item_matrix
        return {
            "terms": np.asarray(terms, dtype=str),
            "idf": np.asarray(self.vectorizer.idf_, dtype=np.float64),
            "counts": self._counts,
            "item_data": m.data,
            "item_indices": m.indices,
            "item_indptr": m.indptr,
        }

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        terms = arrays["terms"].tolist()
        self.vectorizer = self._new_vectorizer(vocabulary={t: i for i, t in enumerate(terms)})
        self.vectorizer.idf_ = arrays["idf"]
        self._counts = arrays["counts"].astype(np.float32)
        self.item_matrix = sp.csr_matrix(
            (arrays["item_data"], arrays["item_indices"], arrays["item_indptr"]),
            shape=(len(self._counts), len(terms)),
            dtype=np.float32,
        )
