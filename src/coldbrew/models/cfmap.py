"""New items for warm users (the idea behind ALDI/Heater): a ridge map from item text vectors
into a collaborative model's item-factor space, taught by the warm items' factors; cold items
get mapped factors, and users are scored with their CF vectors (:class:`CFMapRecommender`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.schema import ITEM_ID, Dataset
from coldbrew.eval.metrics import ndcg_at_k_scores
from coldbrew.models.base import (
    NO_INTERACTIONS,
    Recommender,
    UserQuery,
    model_class,
)
from coldbrew.models.reasons import Reason, closest_liked
from coldbrew.models.ridge import apply_ridge, fit_ridge
from coldbrew.models.tfidf import TfidfRecommender
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.encoder import Encoder, l2_normalize
from coldbrew.text.factory import load_encoder


@runtime_checkable
class FactorModel(Protocol):
    """A fitted collaborative model exposing item factors aligned with its ``item_ids``."""

    item_ids: Any
    item_factors: np.ndarray


class CFMapRecommender(Recommender):
    """Scores every item in a collaborative space; cold items get factors mapped from their text.

    Parameters
    ----------
    encoder
        Encodes item text (and free-text/attribute queries).
    teacher
        A collaborative :class:`~coldbrew.models.base.Recommender` with ``item_factors`` after
        fitting (ALS); it is fit on the same dataset and only its item factors are kept.
    text_model
        The zero-shot model that encodes items and queries (``None``: one over ``encoder``).
    alpha
        Ridge penalty of the text -> factor map (the one used when ``alpha_grid`` is empty).
    alpha_grid
        Penalties to choose from at fit time: each map is taught by 90% of the warm items and
        judged by how well warm users (solved from their other items) rank the held-out 10%
        (NDCG@20), as the cold-item protocol ranks new items; the best sets ``alpha``. So the
        penalty follows the vectors it is given (a fine-tuned encoder's, or with TF-IDF).
    regularization, confidence
        The implicit-ALS user solve used for any user from their liked items:
        ``u = (V'V + c V_l'V_l + reg I)^-1 (1 + c) V_l' 1``.
    min_interactions
        Items with fewer training interactions than this use mapped factors too.
    lexical_dims
        Also feed the item's TF-IDF row, reduced to this many dimensions by truncated SVD, into
        the map (0: text vectors only). On MovieLens and CiteULike the words carry signal the
        small encoder misses.
    lexical
        The TF-IDF model behind ``lexical_dims`` (``None``: its defaults).
    cache_dir
        Where the default text model caches item vectors; not saved.
    """

    kind = "cf_map"
    runtime_arguments = ("cache_dir",)

    def __init__(
        self,
        encoder: Encoder,
        teacher: Recommender,
        *,
        text_model: ZeroShotRecommender | None = None,
        alpha: float = 10.0,
        alpha_grid: Sequence[float] = (),
        regularization: float = 0.05,
        confidence: float = 1.0,
        min_interactions: int = 1,
        lexical_dims: int = 0,
        lexical: TfidfRecommender | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        if lexical_dims < 0:
            raise ValueError(f"lexical_dims must be >= 0, got {lexical_dims}")
        self.lexical_dims = lexical_dims
        self.lexical = lexical or TfidfRecommender()
        self.components = np.zeros((0, 0), dtype=np.float32)
        self.encoder = encoder
        self.teacher = teacher
        if any(a <= 0 for a in alpha_grid):
            raise ValueError(f"every alpha in alpha_grid must be positive, got {alpha_grid}")
        self.alpha = alpha
        self.alpha_grid = tuple(float(a) for a in alpha_grid)
        self.alpha_scores: dict[float, float] = {}
        self.regularization = regularization
        self.confidence = confidence
        self.min_interactions = min_interactions
        self.text_model = text_model or ZeroShotRecommender(encoder, cache_dir=cache_dir)
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.item_factors = np.zeros((0, 0), dtype=np.float32)
        self._gram: tuple[np.ndarray, np.ndarray] | None = None
        self.mapped = np.zeros(0, dtype=bool)
        self._kept_alpha: float | None = None
        self.catalogue = ""
        """The :func:`catalogue_key` of the texts :attr:`components` were learned from."""
        self._kept_svd: tuple[str, np.ndarray] | None = None

    def get_params(self) -> dict[str, Any]:
        # the text model and the lexical part are always of these two classes, so the saved
        # files keep their params only, not their kind as for the teacher (any kind)
        params = super().get_params()
        params["text_model"] = self.text_model.get_params()
        params["lexical"] = self.lexical.get_params()
        return params

    @classmethod
    def _from_params(cls, params: Mapping[str, Any], **components: Any) -> Self:
        params = dict(params)
        encoder = components.get("encoder") or load_encoder(params.pop("encoder"))
        params.pop("encoder", None)
        spec = params.pop("teacher")
        teacher = model_class(spec["kind"])._from_params(spec["params"], **components)
        text_model = ZeroShotRecommender._from_params(
            params.pop("text_model"), **{**components, "encoder": encoder}
        )
        lexical = TfidfRecommender(**params.pop("lexical"))
        return cls(encoder, teacher, text_model=text_model, lexical=lexical, **params)

    def start_from(self, previous: Recommender) -> None:
        """The teacher starts from ``previous``'s fitted teacher (a loaded version has none: its
        teacher is the hybrid's ``cf_f64``, started there), ``previous``'s chosen penalty is
        kept (no :attr:`alpha_grid` search at the next fit), and so is its SVD of the TF-IDF
        rows while the catalogue's texts are the same (:func:`catalogue_key`)."""
        if isinstance(previous, CFMapRecommender):
            if previous.teacher.is_fitted:
                self.teacher.start_from(previous.teacher)
            self._kept_alpha = previous.alpha
            self._kept_svd = (previous.catalogue, previous.components)

    def _fit(self, dataset: Dataset) -> None:
        kept_alpha, self._kept_alpha = self._kept_alpha, None
        fit_once(self.teacher, dataset)
        if not isinstance(self.teacher, FactorModel):
            raise ValueError(f"teacher {self.teacher.kind!r} has no item_factors")
        self.text_model.fit(dataset)
        vectors = self._item_features(dataset.items, dataset)
        teacher_rows = self.teacher.item_ids.rows(list(self.item_ids))
        factors = np.asarray(self.teacher.item_factors, dtype=np.float32)[teacher_rows]
        counts = dataset.positives()[ITEM_ID].value_counts()
        known = counts.reindex(list(self.item_ids)).fillna(0).to_numpy()
        warm = known >= self.min_interactions
        if not warm.any():  # nothing to map from: every item and user scores 0
            self.silent_reason = (
                f"no item with {self.min_interactions}+ training interactions"
                if known.any()
                else NO_INTERACTIONS
            )
            self.weights = np.zeros((vectors.shape[1] + 1, factors.shape[1]), dtype=np.float32)
            self.item_factors = np.zeros_like(factors)
            self.mapped = ~warm
            return
        if kept_alpha is not None:
            self.alpha = kept_alpha
        elif self.alpha_grid:
            self.alpha = self._choose_alpha(vectors, factors, warm)
        self.weights = fit_ridge(vectors[warm], factors[warm], self.alpha)
        self.item_factors = factors.copy()
        self.item_factors[~warm] = apply_ridge(self.weights, vectors[~warm])
        self.mapped = ~warm

    def _choose_alpha(
        self, features: np.ndarray, factors: np.ndarray, warm: np.ndarray, max_users: int = 2000
    ) -> float:
        """The penalty of :attr:`alpha_grid` whose map, taught by 90% of the warm items, lets
        warm users rank the other 10% best (mean NDCG@20; the first of equals wins)."""

        rng = np.random.default_rng(0)
        warm_rows = np.flatnonzero(warm)
        is_held = np.zeros(len(warm), dtype=bool)
        is_held[warm_rows[rng.random(len(warm_rows)) < 0.1]] = True
        held_rows = np.flatnonzero(is_held)
        users, relevant = [], []
        for items in self._history.values():
            rows = self.item_ids.rows(items, skip_unknown=True)
            mask = is_held[rows]
            if mask.any() and (~mask & warm[rows]).any():
                users.append(rows[~mask & warm[rows]])
                relevant.append(np.isin(held_rows, rows[mask]))
        if not users or len(held_rows) < 2 or is_held.sum() == warm.sum():
            return self.alpha
        pick = rng.choice(len(users), min(max_users, len(users)), replace=False)
        vectors = self._solve_users(factors, [users[i] for i in pick])
        rel = np.stack([relevant[i] for i in pick])
        taught = warm & ~is_held
        means = []
        for alpha in self.alpha_grid:
            weights = fit_ridge(features[taught], factors[taught], alpha)
            scores = vectors @ apply_ridge(weights, features[held_rows]).T
            means.append(float(ndcg_at_k_scores(scores, rel, rel.sum(axis=1), 20).mean()))
        self.alpha_scores = dict(zip(self.alpha_grid, means))
        return self.alpha_grid[int(np.argmax(means))]

    def _solve_users(self, factors: np.ndarray, liked_rows: Sequence[np.ndarray]) -> np.ndarray:
        """CF user vectors from the rows of the items each user liked (the implicit-ALS step;
        zero for a user with none)."""
        dim = factors.shape[1]
        if self._gram is None or self._gram[0] is not factors:  # once per set of factors
            self._gram = (factors, factors.T @ factors)
        gram = self._gram[1] + self.regularization * np.eye(dim, dtype=np.float32)
        out = np.zeros((len(liked_rows), dim), dtype=np.float32)
        for q, rows in enumerate(liked_rows):
            if len(rows):
                liked = factors[rows]
                a = gram + self.confidence * liked.T @ liked
                out[q] = np.linalg.solve(a, (1 + self.confidence) * liked.sum(axis=0))
        return out

    def _item_features(self, items: pd.DataFrame, dataset: Dataset | None = None) -> np.ndarray:
        """Text vectors, with the SVD-reduced TF-IDF rows appended when ``lexical_dims``.

        With ``dataset`` (at fit time) the TF-IDF vocabulary and the SVD are learned from its
        catalogue text (no interactions are used).
        """
        fit = dataset is not None
        vectors = self.text_model.item_vectors if fit else self.text_model._encode_items(items)
        if not self.lexical_dims:
            return vectors
        if dataset is not None:
            fit_once(self.lexical, dataset)
            matrix = self.lexical.item_matrix
            self.components = self._reduction(matrix, catalogue_key(self.lexical, dataset))
        else:
            matrix = self._lexical_rows(self.lexical._template().render_frame(items))
        reduced = l2_normalize(np.asarray(matrix @ self.components.T, dtype=np.float32))
        return np.hstack([vectors, reduced])

    def _lexical_rows(self, texts: Sequence[str]) -> Any:
        """TF-IDF rows of ``texts`` over the words the SVD was learned on: a shared TF-IDF
        part grows its vocabulary when new items come (new words get the last columns); the
        rows' scale is lost to the normalisation after the SVD."""
        return self.lexical.transform(texts)[:, : self.components.shape[1]]

    def _reduction(self, matrix: Any, catalogue: str) -> np.ndarray:
        """The SVD components of the TF-IDF item rows: the kept ones when they were learned
        from the same catalogue texts (the same rows, so the same SVD), else learned now."""
        kept, self._kept_svd = self._kept_svd, None
        self.catalogue = catalogue
        if kept is not None and kept[0] == catalogue and kept[1].shape[1] == matrix.shape[1]:
            return kept[1]
        from sklearn.decomposition import TruncatedSVD

        dims = max(1, min(self.lexical_dims, matrix.shape[1] - 1, matrix.shape[0] - 1))
        svd = TruncatedSVD(n_components=dims, random_state=0).fit(matrix)
        return np.asarray(svd.components_, dtype=np.float32)

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        vectors = self._item_features(items)
        n = len(self.item_ids)
        if n > len(self.item_factors):
            grown = np.zeros((n, self.item_factors.shape[1]), dtype=np.float32)
            grown[: len(self.item_factors)] = self.item_factors
            self.item_factors = grown
            self.mapped = np.concatenate([self.mapped, np.ones(n - len(self.mapped), bool)])
        self.item_factors[rows] = apply_ridge(self.weights, vectors)
        self.mapped[rows] = True

    def user_factors(self, queries: Sequence[UserQuery]) -> np.ndarray:
        """CF vectors solved from liked items; users without any get their mapped text vector."""
        rows = [self.item_ids.rows(query.liked, skip_unknown=True) for query in queries]
        out = self._solve_users(self.item_factors, rows)
        textual = [q for q, query in enumerate(queries) if not len(query.liked)]
        if textual:
            plain = [
                UserQuery(text=queries[q].text, attributes=queries[q].attributes) for q in textual
            ]
            features = self._query_features(plain)
            out[textual] = (
                apply_ridge(self.weights, features) * (np.abs(features).sum(1) > 0)[:, None]
            )
        return out

    def _query_features(self, queries: Sequence[UserQuery]) -> np.ndarray:
        """What the map reads for users known only by their words and attributes: their text
        vector, with the SVD-reduced TF-IDF row of their words when ``lexical_dims``."""
        vectors = self.text_model.user_vectors(queries)
        if not self.lexical_dims:
            return vectors
        matrix = self._lexical_rows([q.text or "" for q in queries])
        reduced = l2_normalize(np.asarray(matrix @ self.components.T, dtype=np.float32))
        return np.hstack([vectors, reduced])

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        return self.user_factors(queries) @ self.item_factors.T

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        every = self._remembered.peek(_query_key(queries[0])) if len(queries) == 1 else None
        if every is not None:  # its proposals scored every item for this query already
            return every[None, rows]
        scores: np.ndarray = self.user_factors(queries) @ self.item_factors[rows].T
        return scores

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """The quotable liked item nearest to ``row`` in the CF space; without a history, the
        user's words or profile (mapped into that space)."""
        if query.liked:
            return closest_liked(self.item_ids, self.item_factors, quotable.liked, row, "mapped")
        return Reason("text") if query.text else Reason("profile")

    def encoders(self) -> list[Encoder]:
        return [self.encoder]

    def propose(self, query: UserQuery, n: int) -> np.ndarray:
        """Its exact top ``n`` (new items included, by their mapped factors)."""
        resolved = self.resolve(query)
        every = self._remembered.get(
            _query_key(resolved), lambda: self.user_factors([resolved])[0] @ self.item_factors.T
        )  # remembered for the candidates' scores that follow
        scores = np.where(self._active, every, -np.inf)
        return np.argpartition(-scores, min(n, len(scores)) - 1)[:n]

    def _get_state(self) -> dict[str, np.ndarray]:
        lexical = self.lexical._get_state() if self.lexical_dims else {}
        return {
            "map_weights": self.weights,
            "item_factors": self.item_factors,
            "mapped": self.mapped,
            "lexical_components": self.components,
            "catalogue_key": np.asarray(self.catalogue, dtype=str),
            **{f"lexical_{k}": v for k, v in lexical.items()},
        }

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._remembered.forget()
        self.weights = arrays["map_weights"].astype(np.float32)
        self.item_factors = arrays["item_factors"].astype(np.float32)
        self.mapped = arrays["mapped"].astype(bool)
        self.components = arrays["lexical_components"].astype(np.float32)
        self.catalogue = str(arrays["catalogue_key"]) if "catalogue_key" in arrays else ""
        if self.lexical_dims:
            prefix = "lexical_"
            self.lexical._set_state(
                {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            )
        dim = self.encoder.dim
        self.text_model.item_vectors = np.zeros((0, dim), dtype=np.float32)


def _query_key(query: UserQuery) -> str:
    """What a resolved query's CF vector is solved from: its likes, words and attributes."""
    return repr((query.liked, query.text, sorted(query.attributes.items())))


def fit_once(part: Recommender, dataset: Dataset) -> None:
    """Fit ``part`` on ``dataset`` unless it was fitted on that very dataset already: a part
    the hybrid shares (its ``cf_f64`` is this map's teacher, its ``lexical`` this map's TF-IDF,
    the same settings: :func:`~coldbrew.models.recipes._hybrid_parts`) is fitted once."""
    if not part.fitted_on(dataset):
        part.fit(dataset)


def catalogue_key(lexical: TfidfRecommender, dataset: Dataset) -> str:
    """A digest of the catalogue as ``lexical`` reads it (each item's id and rendered text, in
    order): two fits with the same key learn the same TF-IDF rows."""
    digest = hashlib.sha256()
    texts = lexical._template().render_frame(dataset.items)
    for item_id, text in zip(dataset.items[ITEM_ID].astype(str), texts, strict=True):
        digest.update(f"{item_id}\x00{text}\x00".encode())
    return digest.hexdigest()
