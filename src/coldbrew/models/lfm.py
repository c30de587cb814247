"""LightFM (``lightfm-next``, WARP loss): the classic hybrid cold-start baseline.

Items are represented by an identity feature (only items with training interactions) plus the
bag of words of the same rendered text the language model reads; users by an identity feature
(only users with training interactions) plus one feature per attribute value
(``occupation=student``). Feature rows are normalised to sum to one, as LightFM's own ``Dataset``
does. A cold item is the sum of its word embeddings; a cold user is the sum of their attribute
embeddings, and liked items are folded in with a ridge solve against the item representations
centred on that attribute vector (the model itself is not retrained). A user with neither
attributes nor liked items gets the popularity ranking (:meth:`is_fallback`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from coldbrew.data.frames import pd
from coldbrew.data.idmap import IdMap
from coldbrew.data.schema import Dataset
from coldbrew.models.base import NO_INTERACTIONS, Recommender, UserQuery
from coldbrew.models.cfbase import interaction_matrix, popularity_scores, ridge_fold_in
from coldbrew.models.reasons import Reason
from coldbrew.models.tfidf import normalize
from coldbrew.text.encoder import tokenize
from coldbrew.text.templates import ItemTemplate


def attribute_tokens(attributes: Mapping[str, Any]) -> list[str]:
    """``{"age": 25, "occupation": "student"}`` -> ``["age=25", "occupation=student"]``."""
    return [
        f"{key}={value}"
        for key, value in sorted(attributes.items())
        if value is not None and not (isinstance(value, float) and np.isnan(value))
    ]


class LightFMRecommender(Recommender):
    """LightFM with item text and user attributes as features.

    Parameters
    ----------
    no_components, loss, epochs, learning_rate, item_alpha, user_alpha
        LightFM's own hyperparameters.
    max_features, min_df
        Bag-of-words vocabulary of the item text.
    max_words_per_item
        Keep only this many of an item's words, the rarest first (``None``: all). Long texts
        (plots, abstracts) otherwise make every LightFM update touch a hundred features.
    fold_in_alpha, fold_in_regularization
        The ridge fold-in of a new user's liked items (:func:`~coldbrew.models.cf.ridge_fold_in`).
    seed, num_threads
        LightFM is reproducible for a seed only with one thread.
    """

    kind = "lightfm"

    def __init__(
        self,
        *,
        no_components: int = 64,
        loss: str = "warp",
        epochs: int = 20,
        learning_rate: float = 0.05,
        item_alpha: float = 1e-6,
        user_alpha: float = 1e-6,
        max_features: int = 20_000,
        min_df: int = 2,
        max_words_per_item: int | None = None,
        fold_in_alpha: float = 10.0,
        fold_in_regularization: float = 1.0,
        seed: int = 42,
        num_threads: int = 1,
        text_fields: Sequence[str] | None = None,
        attribute_fields: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if loss not in ("warp", "bpr", "logistic", "warp-kos"):
            raise ValueError(f"loss must be warp, bpr, logistic or warp-kos, got {loss!r}")
        self.no_components = no_components
        self.loss = loss
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.item_alpha = item_alpha
        self.user_alpha = user_alpha
        self.max_features = max_features
        self.min_df = min_df
        self.max_words_per_item = max_words_per_item
        self.fold_in_alpha = fold_in_alpha
        self.fold_in_regularization = fold_in_regularization
        self.seed = seed
        self.num_threads = num_threads
        self.text_fields = tuple(text_fields) if text_fields is not None else None
        self.attribute_fields = tuple(attribute_fields) if attribute_fields is not None else None
        self.user_ids = IdMap()
        self.user_features = IdMap()  # attribute tokens
        self.terms: list[str] = []
        self._term_df = np.zeros(0, dtype=np.float32)  # items each term occurs in
        self.item_biases = np.zeros(0, dtype=np.float32)
        self.item_embeddings = np.zeros((0, no_components), dtype=np.float32)
        self.user_embeddings = np.zeros((0, no_components), dtype=np.float32)
        self._word_biases = np.zeros(0, dtype=np.float32)
        self._word_embeddings = np.zeros((0, no_components), dtype=np.float32)
        self._feature_embeddings = np.zeros((0, no_components), dtype=np.float32)
        self._counts = np.zeros(0, dtype=np.float32)
        self._gram: np.ndarray | None = None  # item embeddings' Gram matrix, for fold-ins

    # ---- features -----------------------------------------------------------------------
    def _texts(self, items: pd.DataFrame) -> list[str]:
        template = ItemTemplate(self.text_fields or ("title",), self.attribute_fields or ())
        return template.render_frame(items)

    def _bag_of_words(self, texts: Sequence[str]) -> sp.csr_matrix:
        from sklearn.feature_extraction.text import CountVectorizer  # on first use

        vectorizer = CountVectorizer(
            tokenizer=tokenize,
            lowercase=False,
            token_pattern=None,
            binary=True,
            vocabulary={t: i for i, t in enumerate(self.terms)},
            dtype=np.float32,
        )
        words = sp.csr_matrix(vectorizer.transform(list(texts)), dtype=np.float32)
        if self.max_words_per_item is None:
            return words
        return _rarest_per_row(words, self._term_df, self.max_words_per_item)

    def _fit_vocabulary(self, texts: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import CountVectorizer  # on first use

        vectorizer = CountVectorizer(
            tokenizer=tokenize,
            lowercase=False,
            token_pattern=None,
            binary=True,
            max_features=self.max_features,
            min_df=min(self.min_df, len(texts)),
        )
        try:
            vectorizer.fit(list(texts))
        except ValueError:  # no word occurs often enough: identity features only
            self.terms = []
            return
        vocabulary = vectorizer.vocabulary_
        self.terms = sorted(vocabulary, key=vocabulary.__getitem__)
        counts = vectorizer.transform(list(texts))
        self._term_df = np.asarray(counts.sum(axis=0), dtype=np.float32).ravel()

    def _item_features(self, texts: Sequence[str], warm: np.ndarray) -> sp.csr_matrix:
        n = len(texts)
        identity = sp.csr_matrix(
            (np.ones(len(warm), np.float32), (warm, np.arange(len(warm)))), shape=(n, len(warm))
        )
        words = self._bag_of_words(texts) if self.terms else sp.csr_matrix((n, 0))
        return sp.csr_matrix(normalize(sp.hstack([identity, words]), norm="l1"), dtype=np.float32)

    def _attribute_rows(self, profiles: Sequence[Mapping[str, Any]]) -> sp.csr_matrix:
        rows, cols = [], []
        for r, attributes in enumerate(profiles):
            for token in attribute_tokens(attributes):
                if token in self.user_features:
                    rows.append(r)
                    cols.append(self.user_features.row(token))
        data = np.ones(len(rows), dtype=np.float32)
        shape = (len(profiles), len(self.user_features))
        return sp.csr_matrix((data, (rows, cols)), shape=shape)

    # ---- fitting ------------------------------------------------------------------------
    def _fit(self, dataset: Dataset) -> None:
        try:
            from lightfm import LightFM
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("LightFM needs lightfm-next: pip install 'coldbrew[cf]'") from exc
        if self.text_fields is None:
            self.text_fields = dataset.spec.item_text
        if self.attribute_fields is None:
            self.attribute_fields = dataset.spec.item_attributes
        matrix, self.user_ids = interaction_matrix(dataset, self.item_ids)
        self._counts = np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel()
        texts = self._texts(dataset.items)
        self._fit_vocabulary(texts)
        warm = np.flatnonzero(self._counts > 0)
        item_features = self._item_features(texts, warm)
        profiles = [self._profiles.get(u, {}).get("attributes", {}) for u in self.user_ids]
        self.user_features = IdMap(sorted({t for p in profiles for t in attribute_tokens(p)}))
        n_users = len(self.user_ids)
        if not matrix.nnz:  # nothing to train on: every representation stays zero
            self._untrained(item_features.shape[1])
            return
        user_features = normalize(
            sp.hstack([sp.identity(n_users, format="csr"), self._attribute_rows(profiles)]),
            norm="l1",
        )
        model = LightFM(
            no_components=self.no_components,
            loss=self.loss,
            learning_rate=self.learning_rate,
            item_alpha=self.item_alpha,
            user_alpha=self.user_alpha,
            random_state=np.random.RandomState(self.seed),
        )
        model.fit(
            matrix.tocoo(),
            user_features=sp.csr_matrix(user_features, dtype=np.float32),
            item_features=item_features,
            epochs=self.epochs,
            num_threads=self.num_threads,
        )
        self._gram = None
        self.item_biases, self.item_embeddings = model.get_item_representations(item_features)
        _, self.user_embeddings = model.get_user_representations(user_features)
        self._word_biases = np.asarray(model.item_biases[len(warm) :], dtype=np.float32)
        self._word_embeddings = np.asarray(model.item_embeddings[len(warm) :], dtype=np.float32)
        self._feature_embeddings = np.asarray(model.user_embeddings[n_users:], dtype=np.float32)

    def _untrained(self, n_item_features: int) -> None:
        """Zero representations of the right shapes (every item and user alike), for a fit
        with no interactions: LightFM learns its feature embeddings from them alone."""
        self.silent_reason = NO_INTERACTIONS
        self._gram = None
        dim, n_items = self.no_components, len(self.item_ids)
        self.item_biases = np.zeros(n_items, dtype=np.float32)
        self.item_embeddings = np.zeros((n_items, dim), dtype=np.float32)
        self.user_embeddings = np.zeros((0, dim), dtype=np.float32)
        self._word_biases = np.zeros(n_item_features, dtype=np.float32)
        self._word_embeddings = np.zeros((n_item_features, dim), dtype=np.float32)
        self._feature_embeddings = np.zeros((len(self.user_features), dim), dtype=np.float32)

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        texts = self._texts(items)
        words = (
            normalize(self._bag_of_words(texts), norm="l1")
            if self.terms
            else sp.csr_matrix((len(texts), 0))
        )
        grow = len(self.item_ids) - len(self.item_biases)
        self._gram = None
        if grow > 0:
            dim = self.item_embeddings.shape[1]
            self.item_biases = np.concatenate([self.item_biases, np.zeros(grow, np.float32)])
            zeros = np.zeros((grow, dim), dtype=np.float32)
            self.item_embeddings = np.vstack([self.item_embeddings, zeros])
            self._counts = np.concatenate([self._counts, np.zeros(grow, dtype=np.float32)])
        self.item_biases[rows] = words @ self._word_biases
        self.item_embeddings[rows] = words @ self._word_embeddings

    # ---- scoring ------------------------------------------------------------------------
    def _attribute_vector(self, query: UserQuery) -> np.ndarray | None:
        row = self._attribute_rows([dict(query.attributes)])
        if row.nnz == 0:
            return None
        vector: np.ndarray = np.asarray(normalize(row, norm="l1") @ self._feature_embeddings)[0]
        return vector

    def _liked_rows(self, query: UserQuery) -> np.ndarray:
        rows = self.item_ids.rows(query.liked, skip_unknown=True)
        known: np.ndarray = rows[self._counts[rows] > 0]
        return known

    def is_fallback(self, query: UserQuery) -> bool:
        """True when nothing usable is known: no trained user, attribute or liked item."""
        resolved = self.resolve(query)
        if resolved.user_id is not None and str(resolved.user_id) in self.user_ids:
            return False
        return self._attribute_vector(resolved) is None and len(self._liked_rows(resolved)) == 0

    def user_vector(self, query: UserQuery) -> np.ndarray:
        """A trained user's representation, else attributes with liked items folded in."""
        if query.user_id is not None and str(query.user_id) in self.user_ids:
            vector: np.ndarray = self.user_embeddings[self.user_ids.row(str(query.user_id))]
            return vector
        prior = self._attribute_vector(query)
        if self._gram is None or self._gram.shape[0] != self.item_embeddings.shape[1]:
            emb = self.item_embeddings.astype(np.float64)
            self._gram = emb.T @ emb
        return ridge_fold_in(
            self.item_embeddings,
            self._liked_rows(query),
            self.fold_in_alpha,
            self.fold_in_regularization,
            prior=prior,
            gram=self._gram,
        )

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        out = np.tile(popularity_scores(self._counts, self.item_ids.ids()), (len(queries), 1))
        for q, query in enumerate(queries):
            if not self.is_fallback(query):
                user = self.user_vector(query).astype(np.float64)
                item_emb = self.item_embeddings.astype(np.float64)
                out[q] = user @ item_emb.T + self.item_biases
        return out

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """What the user liked, without naming an item (its factors mix words and ids)."""
        return Reason("also_liked") if query.liked else Reason()

    # ---- persistence --------------------------------------------------------------------
    @property
    def item_has_signal(self) -> np.ndarray:
        """Items with a training interaction or at least one known word."""
        return np.asarray((self._counts > 0) | np.any(self.item_embeddings != 0, axis=1))

    def _get_state(self) -> dict[str, np.ndarray]:
        return {
            "user_ids": self.user_ids.to_array(),
            "user_features": self.user_features.to_array(),
            "terms": np.asarray(self.terms, dtype=str),
            "term_df": self._term_df,
            "item_biases": self.item_biases,
            "item_embeddings": self.item_embeddings,
            "user_embeddings": self.user_embeddings,
            "word_biases": self._word_biases,
            "word_embeddings": self._word_embeddings,
            "feature_embeddings": self._feature_embeddings,
            "counts": self._counts,
        }

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._gram = None
        self.user_ids = IdMap(arrays["user_ids"].tolist())
        self.user_features = IdMap(arrays["user_features"].tolist())
        self.terms = arrays["terms"].tolist()
        self._term_df = arrays["term_df"].astype(np.float32)
        self.item_biases = arrays["item_biases"].astype(np.float32)
        self.item_embeddings = arrays["item_embeddings"].astype(np.float32)
        self.user_embeddings = arrays["user_embeddings"].astype(np.float32)
        self._word_biases = arrays["word_biases"].astype(np.float32)
        self._word_embeddings = arrays["word_embeddings"].astype(np.float32)
        self._feature_embeddings = arrays["feature_embeddings"].astype(np.float32)
        self._counts = arrays["counts"].astype(np.float32)


def _rarest_per_row(words: sp.csr_matrix, df: np.ndarray, limit: int) -> sp.csr_matrix:
    """Keep at most ``limit`` entries per row: the columns with the lowest ``df`` (then index)."""
    rows, cols = [], []
    for r in range(words.shape[0]):
        idx = words.indices[words.indptr[r] : words.indptr[r + 1]]
        if len(idx) > limit:
            idx = idx[np.lexsort((idx, df[idx]))[:limit]]
        rows.append(np.full(len(idx), r))
        cols.append(idx)
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    data = np.ones(len(row), dtype=np.float32)
    return sp.csr_matrix((data, (row, col)), shape=words.shape)
