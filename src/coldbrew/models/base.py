"""The one :class:`Recommender` protocol every model implements, documented once here.

A model is fit on a :class:`~coldbrew.data.Dataset` (the whole catalogue with its text, plus the
interactions it may learn from) and then answers :class:`UserQuery` objects. A query may name a
known user, carry free text, attributes, liked items (oldest first), or any mix: that covers the
four cold-start modes with one call.

Persistence is a directory: ``config.json`` (the model kind, its hyperparameters, and the small
state that is naturally JSON) and ``arrays.npz`` (numbers, loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.idmap import IdMap
from coldbrew.data.schema import ITEM_ID, Dataset
from coldbrew.index.exact import top_k
from coldbrew.models.memo import LastQuery
from coldbrew.models.params import params_of
from coldbrew.models.query import Recommendations as Recommendations  # the protocol's types
from coldbrew.models.query import UserQuery as UserQuery
from coldbrew.models.reasons import Reason
from coldbrew.models.rerank import candidate_pool, check_asked, rerank
from coldbrew.models.saving import (
    history_arrays,
    pop_history,
    read_arrays,
    read_config,
    write_model_files,
)
from coldbrew.models.users import users_of
from coldbrew.text.encoder import Encoder

NO_INTERACTIONS = "no interactions"
"""The :attr:`Recommender.silent_reason` of a model that learns from interactions only, fit
on none (a new catalogue)."""


class ModelNotFittedError(RuntimeError):
    """Raised when a model is asked to score before :meth:`Recommender.fit`."""


_KINDS: dict[str, type[Recommender]] = {}
"""Model kind -> its class, filled as each class is defined (``__init_subclass__``)."""


class Recommender(ABC):
    """Base class: fit / score / recommend / add_items / remove_items / save / load.

    Subclasses implement :meth:`_fit`, :meth:`_score_rows` and, when they hold arrays,
    :meth:`_get_state` / :meth:`_set_state`. Constructors take hyperparameters and injected
    components only, each kept in the attribute of its name (so :meth:`get_params` follows from
    the signature); nothing is learned or loaded in ``__init__``.
    """

    kind: ClassVar[str]
    runtime_arguments: ClassVar[tuple[str, ...]] = ()
    """Constructor arguments that say how a run goes (a cache folder, a progress bar), not
    what the model is: left out of :meth:`get_params` and the saved files."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class that declares its own ``kind`` is what :meth:`load` builds for that kind
        (every built-in one is imported with :mod:`coldbrew.models`, by
        :mod:`coldbrew.models.registry`)."""
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str):
            _KINDS[kind] = cls

    def __init__(self) -> None:
        self.item_ids = IdMap()
        self._active = np.zeros(0, dtype=bool)
        self._history: dict[str, list[str]] = {}
        self._profiles: dict[str, dict[str, Any]] = {}
        self._fitted = False
        self._fitted_on: weakref.ref[Dataset] | None = None
        self._popularity: np.ndarray | None = None  # per item row, from the histories
        self.silent_reason: str | None = None
        """Why the last fit learned nothing this model could rank by (``None``: it learned)."""
        self._remembered = LastQuery()  # forgotten at every fit, item change, forgotten user

    # ---- to implement -------------------------------------------------------------------
    @abstractmethod
    def _fit(self, dataset: Dataset) -> None:
        """Learn from ``dataset``; :attr:`item_ids` already holds its items in order."""

    @abstractmethod
    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        """Scores of shape ``(len(queries), len(self.item_ids))``; queries are resolved."""

    def _get_state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        return None

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        """Make new (or changed) items scorable; the default leaves their scores to the model."""
        return None

    def start_from(self, previous: Recommender) -> None:
        """Let the next :meth:`fit` start from what ``previous`` (the same kind of model,
        fitted on a little less of the same data) learned, where that is cheaper than learning
        it again: a refit's parts (:meth:`~coldbrew.models.hybrid.HybridRecommender.fit_reusing`).
        The default learns everything afresh."""
        return None

    # ---- shared behaviour ---------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as JSON-able values (components as their config dicts): the
        constructor's arguments less :attr:`runtime_arguments`, each read from the attribute
        of the same name (:mod:`coldbrew.models.params`)."""
        return params_of(self, self.runtime_arguments)

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def fit(self, dataset: Dataset) -> Self:
        """Learn from the catalogue, users and positive interactions of ``dataset``."""
        if dataset.items.empty:
            raise ValueError(f"dataset {dataset.name!r} has no items to recommend")
        self._start_fit(IdMap(dataset.items[ITEM_ID]), *users_of(dataset))
        self._fit(dataset)
        self._fitted, self._fitted_on = True, weakref.ref(dataset)
        return self

    def _start_fit(
        self, ids: IdMap, history: dict[str, list[str]], profiles: dict[str, dict[str, Any]]
    ) -> None:
        """What every fit starts from: the items in order, the users' histories and profiles."""
        self.item_ids, self._active, self._popularity = ids, np.ones(len(ids), bool), None
        self._history, self._profiles, self.silent_reason = history, profiles, None
        self._remembered.forget()

    def fitted_on(self, dataset: Dataset) -> bool:
        """Whether the last :meth:`fit` learned from this very ``dataset`` object (a part two
        models share is fitted once: the hybrid's ``cf_f64`` is ``cf_map``'s teacher)."""
        return self._fitted_on is not None and self._fitted_on() is dataset

    def describe(self) -> str:
        """One line on what the fitted model learned from: its kind, and why it is silent
        when the data gave it nothing to learn (:attr:`silent_reason`)."""
        if self.silent_reason is None:
            return self.kind
        return f"{self.kind} (silent: {self.silent_reason})"

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise ModelNotFittedError(
                f"{type(self).__name__} is not fitted: call fit(dataset) first"
            )

    def resolve(self, query: UserQuery) -> UserQuery:
        """Fill a known user's history, text and attributes where the query leaves them out."""
        if query.user_id is None:
            return query
        profile = self._profiles.get(str(query.user_id), {})
        liked = query.liked or tuple(self._history.get(str(query.user_id), ()))
        attributes = {**profile.get("attributes", {}), **dict(query.attributes)}
        text = query.text if query.text else profile.get("text")
        return replace(query, liked=liked, attributes=attributes, text=text)

    def score(self, queries: Sequence[UserQuery]) -> np.ndarray:
        """Scores over every item row (removed items get ``-inf``)."""
        self._check_fitted()
        resolved = [self.resolve(q) for q in queries]
        scores = np.asarray(self._score_rows(resolved), dtype=np.float32)
        scores[:, ~self._active] = -np.inf
        return scores

    def score_rows(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        """Scores of the item ``rows`` only, ``(queries, rows)`` (removed items ``-inf``): what
        :meth:`score` gives there, for less work on a large catalogue where a model can."""
        return self.score_with_reference(queries, rows, np.zeros(0, dtype=np.int64))

    def score_with_reference(
        self, queries: Sequence[UserQuery], rows: np.ndarray, reference: np.ndarray
    ) -> np.ndarray:
        """:meth:`score_rows` of ``rows`` followed by ``reference``: a fixed sample of the
        catalogue, the same at every request, that a hybrid standardises its parts by (a model
        may keep what it reads of those rows between calls)."""
        self._check_fitted()
        rows, reference = np.asarray(rows, dtype=np.int64), np.asarray(reference, dtype=np.int64)
        resolved = [self.resolve(q) for q in queries]
        if len(reference):
            found = self._score_beside(resolved, rows, reference)
        else:
            found = self._score_subset(resolved, rows)
        scores = np.asarray(found, dtype=np.float32)
        scores[:, ~self._active[np.concatenate([rows, reference])]] = -np.inf
        return scores

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        """Scores of ``rows`` for resolved queries; the default scores every item."""
        return self._score_rows(queries)[:, rows]

    def _score_beside(
        self, queries: Sequence[UserQuery], rows: np.ndarray, reference: np.ndarray
    ) -> np.ndarray:
        """Scores of ``rows`` then ``reference`` for resolved queries, as one subset here."""
        return self._score_subset(queries, np.concatenate([rows, reference]))

    def propose(self, query: UserQuery, n: int) -> np.ndarray:
        """Up to ``n`` item rows this model would rank high for ``query``, found cheaply (an
        exact top over factors, the most popular): candidates for scoring a large catalogue.
        Models without a cheap way propose none."""
        return np.zeros(0, dtype=np.int64)

    def contributions(
        self, queries: Sequence[UserQuery], rows: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The parts of the score, ``(queries, items)`` each, that add up to it: one part named
        after the model unless the model knows better (a blend, the parts of a user vector).
        ``queries`` must be resolved (:meth:`resolve`); ``rows``: only those items, as
        :meth:`score_rows` scores them."""
        self._check_fitted()
        scores = self._score_rows(queries) if rows is None else self._score_subset(queries, rows)
        return {self.kind: np.asarray(scores, dtype=np.float32)}

    def explain(
        self,
        query: UserQuery,
        item_ids: Sequence[str],
        *,
        quotable: UserQuery | None = None,
        subset: bool = False,
    ) -> list[Reason]:
        """Why the model scored each of ``item_ids`` for ``query``: one :class:`Reason` each,
        from the part of the score that counted most (:meth:`contributions`; the first of
        equal shares).

        The reasons come from the whole (resolved) query; the evidence they cite comes only
        from ``quotable`` (what a caller may be shown; by default all of the query).
        ``subset``: the items were ranked by :meth:`score_rows`, so their parts are computed
        that way too, for them alone."""
        self._check_fitted()
        resolved = self.resolve(query)
        said = resolved if quotable is None else quotable
        rows = self.item_ids.rows(item_ids)
        contributions = self.contributions([resolved], rows if subset else None)
        columns = np.arange(len(rows)) if subset else rows
        reasons = []
        for row, column in zip(rows, columns, strict=True):
            shares = {name: round(float(c[0, column]), 4) for name, c in contributions.items()}
            top = max(shares, key=lambda n: shares[n])
            reason = self._reason(top, resolved, said, int(row))
            reasons.append(replace(reason, part=top, shares=shares))
        return reasons

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """Why item ``row`` scored for the resolved ``query``, ``part`` of the score counting
        most, citing only ``quotable``; the default: no reason."""
        return Reason()

    def is_fallback(self, query: UserQuery) -> bool | None:
        """Whether ``query`` gets the model's popularity fallback (``None``: it has none)."""
        return None

    @property
    def item_has_signal(self) -> np.ndarray | None:
        """Per item row, whether the model learned anything of it (``None``: not told)."""
        return None

    def blend_report(self, queries: Sequence[UserQuery], cell: int) -> list[dict[str, Any]] | None:
        """A blend's weights for ``queries`` on item ``cell`` (``None``: not a blend)."""
        return None

    def named_parts(self) -> dict[str, Recommender]:
        """The models whose scores make this one's, by name: a blend's parts, else itself."""
        return {self.kind: self}

    def item_fields(self) -> tuple[str, ...]:
        """The item fields the model renders into text (none for a model that reads none)."""
        return ()

    def encoders(self) -> list[Encoder]:
        """The encoders that read the model's queries, the one for the user's words first
        (none for a model that reads no text)."""
        return []

    def recommend(
        self,
        query: UserQuery,
        k: int = 10,
        *,
        exclude: Iterable[str] = (),
        candidates: Iterable[str] | None = None,
        exclude_seen: bool = True,
        diversity: float = 0.0,
        novelty: float = 0.0,
    ) -> Recommendations:
        """Top-``k`` items for one user (see :meth:`recommend_batch`)."""
        return self.recommend_batch(
            [query],
            k,
            exclude=[exclude],
            candidates=candidates,
            exclude_seen=exclude_seen,
            diversity=diversity,
            novelty=novelty,
        )[0]

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
        """Top-``k`` items per query.

        ``exclude`` holds one collection of ids per query; ``candidates`` restricts ranking to a
        subset of the catalogue; ``exclude_seen`` drops the user's liked/known items.
        ``diversity`` (``[0, 1]``) and ``novelty`` (``>= 0``) re-rank the best-scored items
        (:mod:`coldbrew.models.rerank`) by dissimilarity of their :meth:`text_vectors` and
        against their :meth:`item_popularity`; at 0 (the default) the ranking is the model's
        own. Scores stay the model's, so with a control on they need not descend.
        """
        check_asked(k, diversity, novelty)
        scores = self.score(queries)
        if candidates is not None:
            allowed = np.zeros(scores.shape[1], dtype=bool)
            allowed[self.item_ids.rows(candidates, skip_unknown=True)] = True
            scores[:, ~allowed] = -np.inf
        for q, query in enumerate(queries):
            banned = self.banned(query, exclude[q] if exclude is not None else (), exclude_seen)
            if banned:
                scores[q, self.item_ids.rows(banned, skip_unknown=True)] = -np.inf
        if diversity or novelty:
            cols = [self._rerank(row, k, diversity, novelty) for row in scores]
        else:
            cols = list(top_k(scores, k))
        out = []
        for q in range(len(queries)):
            row_scores = scores[q, cols[q]]
            keep = np.isfinite(row_scores)
            out.append(Recommendations(self.item_ids.ids(cols[q][keep]), row_scores[keep]))
        return out

    def banned(self, query: UserQuery, exclude: Iterable[str], exclude_seen: bool) -> set[str]:
        """The items ``query`` must not get: ``exclude``, and with ``exclude_seen`` the ones
        the (resolved) user liked."""
        banned = set(exclude)
        if exclude_seen:
            banned |= set(self.resolve(query).liked)
        return banned

    def _rerank(
        self,
        scores: np.ndarray,
        k: int,
        diversity: float,
        novelty: float,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """One query's top ``k`` positions in ``scores`` with the controls on
        (:func:`~.rerank.rerank`); ``rows``: the item row of each score (``None``: position
        ``i`` is row ``i``, the whole catalogue scored)."""
        pool = candidate_pool(scores, k)
        items = pool if rows is None else rows[pool]
        vectors = self.text_vectors(items) if diversity else None
        if diversity and vectors is None:
            raise ValueError(f"diversity needs item text vectors; a {self.kind} model has none")
        chosen = rerank(
            scores[pool],
            k,
            vectors=vectors,
            popularity=self.item_popularity()[items],
            diversity=diversity,
            novelty=novelty,
        )
        cols: np.ndarray = pool[chosen]
        return cols

    def text_vectors(self, rows: np.ndarray) -> np.ndarray | None:
        """The unit text vectors of item ``rows``, float32 ``(rows, dim)``, for the diversity
        control; ``None`` for a model that holds none (the default)."""
        return None

    def item_popularity(self) -> np.ndarray:
        """Each item row's count of positive interactions in the known users' histories."""
        if self._popularity is None or len(self._popularity) != len(self.item_ids):
            flat = [i for items in self._history.values() for i in items]
            rows = self.item_ids.rows(flat, skip_unknown=True)
            counts = np.bincount(rows, minlength=len(self.item_ids))
            self._popularity = counts.astype(np.float32)
        return self._popularity

    def add_items(self, items: pd.DataFrame) -> None:
        """Add new items (or replace changed ones) after fitting; they are scorable at once."""
        self._check_fitted()
        if ITEM_ID not in items:
            raise ValueError(f"items need an {ITEM_ID!r} column, got {list(items.columns)}")
        rows = self.item_ids.add(items[ITEM_ID].astype(str))
        if len(self.item_ids) > len(self._active):
            self._active = np.concatenate(
                [self._active, np.ones(len(self.item_ids) - len(self._active), bool)]
            )
        self._active[rows] = True
        self._add_items(items.reset_index(drop=True), rows)
        self._remembered.forget()

    def remove_items(self, item_ids: Iterable[str]) -> None:
        """Never recommend these items again (unknown ids are ignored)."""
        self._active[self.item_ids.rows(item_ids, skip_unknown=True)] = False
        self._remembered.forget()

    def forget_user(self, user_id: str) -> None:
        """Drop everything this model keeps of ``user_id`` (history, profile, trained vectors).

        What the user's data taught the rest of the model (item factors, counts) stays until the
        next fit: a service that must forget a user refits without them.
        """
        uid = str(user_id)
        self._history.pop(uid, None)
        self._profiles.pop(uid, None)
        self._popularity = None
        self._remembered.forget()
        self._forget_user(uid)

    def _forget_user(self, user_id: str) -> None:
        """Drop per-user state a subclass keeps beyond history and profile."""
        return None

    def known_users(self) -> list[str]:
        """Users seen in training (with a profile or a history), sorted."""
        return sorted(set(self._profiles) | set(self._history))

    def active_item_ids(self) -> list[str]:
        return self.item_ids.ids(np.flatnonzero(self._active))

    # ---- persistence --------------------------------------------------------------------
    def save(self, path: str | Path, *, profiles: bool = True) -> Path:
        """Write ``config.json`` and ``arrays.npz`` into the directory ``path``.

        ``profiles=False`` leaves the known users' free text and attributes out: the loaded
        model fills a known user's history but not their words, so queries must bring those
        (the service does, from its database: its model files hold no user's words). What
        stays is learned from the population: vectors, counts, and user and item ids.
        """
        self._check_fitted()
        config = {
            "kind": self.kind,
            "params": self.get_params(),
            "profiles": self._profiles if profiles else {},
            "silent_reason": self.silent_reason,
        }
        arrays = {
            "_item_ids": self.item_ids.to_array(),
            "_active": self._active,
            **history_arrays(self._history),
            **self._get_state(),
        }
        return write_model_files(Path(path), config, arrays)

    @classmethod
    def _from_params(cls, params: Mapping[str, Any], **components: Any) -> Self:
        return cls(**params)

    @classmethod
    def load(cls, path: str | Path, **components: Any) -> Recommender:
        """Load any saved model (the subclass is read from ``config.json``).

        ``components`` (such as ``encoder=...``) replace the ones the config would rebuild.
        """
        path = Path(path)
        config = read_config(path)
        model_cls = model_class(config["kind"])
        # model_dir lets a model find files it saved next to config.json (an encoder)
        model = model_cls._from_params(config["params"], **{"model_dir": path, **components})
        arrays = read_arrays(path)
        model.item_ids = IdMap(arrays.pop("_item_ids").tolist())
        model._active = arrays.pop("_active").astype(bool)
        model._history = pop_history(arrays)
        model._profiles = config.get("profiles", {})
        model.silent_reason = config.get("silent_reason")
        model._set_state(arrays)
        model._fitted = True
        return model


def model_class(kind: str) -> type[Recommender]:
    """The class that saves as ``kind`` (see :meth:`Recommender.load`)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {sorted(_KINDS)}")
    return _KINDS[kind]
