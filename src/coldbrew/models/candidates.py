"""A model that scores only candidates: how a large catalogue is ranked.

:class:`CandidateRecommender` wraps a fitted model. For each query the model proposes items
(:meth:`~coldbrew.models.Recommender.propose`: exact tops over CF factors, the most popular,
the newest without interactions), the model's language-model part adds its nearest items in an
item index, and only these are scored (:meth:`~coldbrew.models.Recommender.score_rows`). So the
service's ranking above ``Serving.score_all_below`` items is a :class:`Recommender` like any
other: the contract test covers it and ``coldbrew bench`` measures it (``hybrid_candidates``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.schema import Dataset
from coldbrew.index.base import Index
from coldbrew.index.exact import ExactIndex, top_k
from coldbrew.models.base import Recommendations, Recommender, UserQuery
from coldbrew.models.reasons import Reason
from coldbrew.models.rerank import check_asked
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.encoder import Encoder

MODEL_DIR = "model"
"""Where :meth:`CandidateRecommender.save` puts the wrapped model, inside its own directory."""
WHOLE_SUBSET = 4
"""An allowed subset of at most this many times ``n`` items is scored whole, not searched."""


class CandidateRecommender(Recommender):
    """``model``'s ranking (held as :attr:`wrapped`) over its candidates only: up to ``n``
    items from each part that proposes (:meth:`Recommender.propose`) and the ``n`` nearest
    items in ``index`` to the query's vector from ``model``'s language-model part.

    ``score``, ``score_rows``, ``explain`` and everything else but :meth:`recommend_batch`
    are ``model``'s. ``index`` holds the item vectors under their ids (the live engine passes
    its own and keeps it current); without one, :meth:`fit` builds an exact index over the
    language-model part's item vectors, which :meth:`add_items` and :meth:`remove_items`
    keep current. Saved: the wrapped model in ``model/``; the index is built again on load.
    """

    kind = "candidates"

    def __init__(self, model: Recommender, index: Index | None = None, n: int = 200) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        self.wrapped, self.index, self.n = model, index, n
        if model.is_fitted:
            self._share()

    def _share(self) -> None:
        """Read the wrapped model's ids, histories and profiles as this one's (the same
        objects: nothing is copied)."""
        m = self.wrapped
        self.item_ids, self._active, self._fitted = m.item_ids, m._active, m.is_fitted
        self._history, self._profiles, self.silent_reason = m._history, m._profiles, m.silent_reason

    # ---- what the protocol asks ---------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {"n": self.n, "model": {"kind": self.wrapped.kind}}

    @classmethod
    def _from_params(cls, params: Mapping[str, Any], **components: Any) -> Self:
        model_dir = components.get("model_dir")
        if model_dir is None:
            raise ValueError("loading a candidates model needs its directory (model/ is there)")
        sub = {k: v for k, v in components.items() if k != "model_dir"}
        return cls(Recommender.load(Path(model_dir) / MODEL_DIR, **sub), n=int(params["n"]))

    def save(self, path: str | Path, *, profiles: bool = True) -> Path:
        path = super().save(path, profiles=profiles)
        self.wrapped.save(path / MODEL_DIR, profiles=profiles)
        return path

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._share()
        self.index = self._own_index()

    def fit(self, dataset: Dataset) -> Self:
        self.wrapped.fit(dataset)
        self._share()
        self.index = self._own_index() if self.index is None else self.index
        return self

    def _fit(self, dataset: Dataset) -> None:
        self.wrapped.fit(dataset)

    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        return self.wrapped.score(queries)

    def start_from(self, previous: Recommender) -> None:
        inner = previous.wrapped if isinstance(previous, CandidateRecommender) else previous
        self.wrapped.start_from(inner)

    # ---- the wrapped model's answers ----------------------------------------------------
    def describe(self) -> str:
        return f"{self.wrapped.describe()}, over {self.n} candidates a part"

    def resolve(self, query: UserQuery) -> UserQuery:
        return self.wrapped.resolve(query)

    def score(self, queries: Sequence[UserQuery]) -> np.ndarray:
        return self.wrapped.score(queries)

    def score_rows(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        return self.wrapped.score_rows(queries, rows)

    def score_with_reference(
        self, queries: Sequence[UserQuery], rows: np.ndarray, reference: np.ndarray
    ) -> np.ndarray:
        return self.wrapped.score_with_reference(queries, rows, reference)

    def contributions(
        self, queries: Sequence[UserQuery], rows: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        return self.wrapped.contributions(queries, rows)

    def explain(
        self,
        query: UserQuery,
        item_ids: Sequence[str],
        *,
        quotable: UserQuery | None = None,
        subset: bool = False,
    ) -> list[Reason]:
        return self.wrapped.explain(query, item_ids, quotable=quotable, subset=subset)

    def is_fallback(self, query: UserQuery) -> bool | None:
        return self.wrapped.is_fallback(query)

    @property
    def item_has_signal(self) -> np.ndarray | None:
        return self.wrapped.item_has_signal

    def blend_report(self, queries: Sequence[UserQuery], cell: int) -> list[dict[str, Any]] | None:
        return self.wrapped.blend_report(queries, cell)

    def named_parts(self) -> dict[str, Recommender]:
        return self.wrapped.named_parts()

    def item_fields(self) -> tuple[str, ...]:
        return self.wrapped.item_fields()

    def encoders(self) -> list[Encoder]:
        return self.wrapped.encoders()

    def text_vectors(self, rows: np.ndarray) -> np.ndarray | None:
        return self.wrapped.text_vectors(rows)

    def item_popularity(self) -> np.ndarray:
        return self.wrapped.item_popularity()

    # ---- changes, kept in the wrapped model and the index -------------------------------
    def add_items(self, items: pd.DataFrame) -> None:
        self.wrapped.add_items(items)
        self._share()
        text = self.text_model()
        if self.index is not None and text is not None:
            rows = self.item_ids.rows(items["item_id"].astype(str))
            self.index.add(self.item_ids.ids(rows), text.text_vectors(rows))

    def remove_items(self, item_ids: Iterable[str]) -> None:
        item_ids = list(item_ids)
        self.wrapped.remove_items(item_ids)
        if self.index is not None:
            self.index.remove(item_ids)

    def forget_user(self, user_id: str) -> None:
        self.wrapped.forget_user(user_id)

    # ---- ranking the candidates ---------------------------------------------------------
    def text_model(self) -> ZeroShotRecommender | None:
        """The language-model part of the wrapped model (itself, for a zero-shot model)."""
        for part in self.wrapped.named_parts().values():
            if isinstance(part, ZeroShotRecommender):
                return part
        return None

    def propose(self, query: UserQuery, n: int) -> np.ndarray:
        """What the wrapped model proposes, ``n`` a part, and the ``n`` items nearest the
        query's language-model vector in the index."""
        return self.candidates(query, n, set())

    def candidates(self, query: UserQuery, n: int, exclude: set[str]) -> np.ndarray:
        """Item rows worth scoring for ``query``: the wrapped model's proposals and the
        index's ``n`` nearest items to the language model's vector (``exclude`` not among
        them), sorted, each once."""
        self._check_fitted()
        rows = [self.wrapped.propose(query, n)]
        text = self.text_model()
        if text is not None and self.index is not None:
            vector = text.user_vectors([text.resolve(query)])[0]
            if np.any(vector):
                ids, _ = self.index.search(vector[None, :], n, exclude=[exclude])
                rows.append(self.item_ids.rows(ids[0], skip_unknown=True))
        found: np.ndarray = np.unique(np.concatenate(rows)).astype(np.int64)
        return found

    def recommend_batch(
        self,
        queries: Sequence[UserQuery],
        k: int = 10,
        *,
        exclude: Sequence[Iterable[str]] | None = None,
        candidates: Iterable[str] | None = None,
        exclude_seen: bool = True,
        diversity: float = 0.0,
        novelty: float = 0.0,
    ) -> list[Recommendations]:
        """Top-``k`` of each query's candidates (:meth:`candidates`; an allowed subset
        ``candidates`` of at most :data:`WHOLE_SUBSET` times ``n`` items is scored whole);
        the arguments are :meth:`Recommender.recommend_batch`'s."""
        check_asked(k, diversity, novelty)
        allowed = None if candidates is None else set(candidates)
        return [
            self._top(
                query,
                k,
                self.banned(query, exclude[q] if exclude is not None else (), exclude_seen),
                allowed,
                (diversity, novelty),
            )
            for q, query in enumerate(queries)
        ]

    def _top(
        self,
        query: UserQuery,
        k: int,
        exclude: set[str],
        allowed: set[str] | None,
        controls: tuple[float, float],
    ) -> Recommendations:
        """The top ``k`` of one query's candidates, ``exclude`` never among them."""
        rows = self._rows(query, exclude, allowed)
        scores = self.score_rows([query], rows)[0]
        order = self._order(scores, rows, k, controls)
        order = order[np.isfinite(scores[order])]
        return Recommendations(self.item_ids.ids(rows[order]), scores[order])

    def _rows(self, query: UserQuery, exclude: set[str], allowed: set[str] | None) -> np.ndarray:
        """The rows to score: the candidates (within ``allowed``), or a small ``allowed``
        whole; never the ``exclude``d."""
        if allowed is not None and len(allowed) <= WHOLE_SUBSET * self.n:
            rows = self.item_ids.rows(sorted(allowed), skip_unknown=True)
        else:
            rows = self.candidates(query, self.n, exclude)
            if allowed is not None:
                rows = rows[np.isin(rows, self.item_ids.rows(allowed, skip_unknown=True))]
        banned = self.item_ids.rows(exclude, skip_unknown=True)
        found: np.ndarray = rows[~np.isin(rows, banned)]
        return found

    def _order(
        self, scores: np.ndarray, rows: np.ndarray, k: int, controls: tuple[float, float]
    ) -> np.ndarray:
        """The top ``k`` positions of ``scores`` (of item ``rows``), with the diversity and
        novelty controls where either is on (the wrapped model's, over these rows)."""
        diversity, novelty = controls
        if not (diversity or novelty):
            top: np.ndarray = top_k(scores, k)[0]
            return top
        return self.wrapped._rerank(scores, k, diversity, novelty, rows)

    def _own_index(self) -> Index | None:
        """An exact index over the language-model part's item vectors (active items only)."""
        text = self.text_model()
        if text is None:
            return None
        rows = np.flatnonzero(self._active)
        index = ExactIndex(text.item_vectors.shape[1])
        index.add(self.item_ids.ids(rows), text.text_vectors(rows))
        return index
