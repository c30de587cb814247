"""The hybrid hand-over: collaborative, language-model and lexical scores blended by what is known.

Each part's scores are standardised per query (z-scores over the items), then summed with weights
that depend on the user's bucket (how many liked items: 0, 1-2, 3-4, 5-9, 10-19, 20-49, 50-99,
100+; the last two keep heavy warm users apart from users who have just revealed 20) and the
item's bucket (no training interaction, or some), and on whether the user was in the training
data (a returning user's known items and a new user's just-revealed ones favour different parts:
on ml-1m the new users' popularity-leaning weights cost the warm users 0.04 NDCG@20 when both
shared a bucket), and on whether a returning user reveals likes beyond that history (their next
like follows the latest ones). The weights are fitted on an inner validation carved out of the
training data only (held-out items, held-out users revealing k items, held-out interactions of
warm users, their latest like with the rest revealed) by a grid search over blends of at most
three parts. A blend replaces the best single part (or, for one bucket, the weights of its whole
cell; for a new user who revealed nothing, plain popularity) only when it wins *out of fold* by
more than its standard error (:mod:`coldbrew.models.selection`): a search over hundreds of
weightings otherwise picks blends that led the validation by luck and lost to their own part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeGuard

import numpy as np
from tqdm.auto import tqdm

from coldbrew.data.frames import pd
from coldbrew.data.idmap import IdMap
from coldbrew.data.schema import (
    ITEM_ID,
    Dataset,
)
from coldbrew.models.attrsmoothing import choose_smoothings, keep_smoothings, references
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.baselines import _id_hashes
from coldbrew.models.blend import Prepared
from coldbrew.models.blendreport import blend_groups
from coldbrew.models.contextweight import (
    CONTEXT_WEIGHTED,
    choose_context_weight,
    context_candidates,
)
from coldbrew.models.innerval import NEXT_ITEM_STEPS, inner_validation
from coldbrew.models.partscores import (
    REFERENCE,
    newest_cold,
    part_scores,
    part_scores_of,
    reference_sample,
)
from coldbrew.models.reasons import Reason
from coldbrew.models.selection import (
    ValTask,
)
from coldbrew.models.users import users_of
from coldbrew.models.weights import (
    USER_EDGES,
    USER_KINDS,
    WeightSearch,
    describe_blend,
    gather,
    mute_silent,
    saved_weights,
    text_weights,
    user_bucket,
    user_kind,
)
from coldbrew.stopwatch import Stopwatch
from coldbrew.text.encoder import Encoder

PARTS_DIR = "parts"


class HybridRecommender(Recommender):
    """A per-bucket weighted blend of other recommenders' standardised scores.

    Parameters
    ----------
    parts
        Named recommenders (for instance ``{"cf": ALS, "lm": AttributeMap, "lexical": TF-IDF}``),
        fit on the same data; their items must come in the same order (they do when fit on the
        same dataset).
    grid_step
        Resolution of the weight grid on the simplex.
    tune
        Fit the weights on an inner validation split (else: equal weights).
    min_queries
        A user bucket with fewer validation queries takes the weights tuned on all of its cell.
    show_progress
        A progress bar over the fit's steps (each part on the inner split, the weights, each
        part on all the data) on stderr; not saved with the model.
    max_parts
        At most this many parts weigh in one blend (``None``: any number). Fewer free weights
        give the search fewer chances to fit the validation's noise, and cost less to search:
        with nine parts at step 0.2, 657 grid points instead of 1,287.
    context_weights
        Candidate weights of the query's context in the parts that read it (the context in
        words in the language-model parts, :class:`~coldbrew.models.zeroshot.ZeroShotRecommender`;
        the context features' learned vectors in
        :class:`~coldbrew.models.contextcf.ContextALSRecommender`), chosen
        on the inner validation (:mod:`coldbrew.models.contextweight`); 0 is always one and is
        kept unless another beats it. ``(0.0,)``, the default, leaves the parts as they are.
    next_item_queries
        Ask the inner validation's time-ordered returning users again for their latest likes (a
        count, :data:`~.innerval.NEXT_ITEM_STEPS` by default), each with the likes before it
        revealed (``next_item`` of :func:`~.innerval.inner_validation`), and choose on those
        queries alone the weights of returning users who reveal likes beyond their training
        history (:data:`~.weights.USER_KINDS`); ``False``: none. Without timestamps there are
        none, and those users share the weights of the others.
    attribute_smoothings
        Candidate smoothings of the attribute-popularity parts, chosen on the inner
        validation's held-out users who revealed nothing (:mod:`coldbrew.models.attrsmoothing`);
        each part's smoothing when the hybrid was built is always one and is kept unless
        another beats it. ``()``, the default, leaves the parts as they are.
    every_shape, each_shape
        How returning users' weights are judged on both shapes of validation query, random or
        latest likes held out (:class:`~.weights.WeightSearch`'s switches of those names).
    """

    kind = "hybrid"
    runtime_arguments = ("show_progress",)

    def __init__(
        self,
        parts: Mapping[str, Recommender],
        *,
        grid_step: float = 0.2,
        tune: bool = True,
        val_fraction: float = 0.1,
        min_queries: int = 30,
        max_parts: int | None = 3,
        seed: int = 42,
        show_progress: bool = False,
        context_weights: Sequence[float] = (0.0,),
        next_item_queries: int = NEXT_ITEM_STEPS,
        attribute_smoothings: Sequence[float] = (),
        every_shape: bool = False,
        each_shape: bool = False,
    ) -> None:
        super().__init__()
        if not parts:
            raise ValueError("parts must hold at least one model, got none")
        if not 0 < grid_step <= 1:
            raise ValueError(f"grid_step must be in (0, 1], got {grid_step}")
        if max_parts is not None and max_parts < 1:
            raise ValueError(f"max_parts must be at least 1 (or None), got {max_parts}")
        self.parts = dict(parts)
        self.grid_step = grid_step
        self.tune = tune
        self.val_fraction = val_fraction
        self.min_queries = min_queries
        self.max_parts = max_parts
        self.context_weights = context_candidates(context_weights)
        self.seed = seed
        self.show_progress = show_progress
        self.next_item_queries = next_item_queries
        self.every_shape = every_shape
        self.each_shape = each_shape
        self.attribute_smoothings = tuple(float(s) for s in attribute_smoothings)
        self._smoothing = references(self.parts, self.attribute_smoothings)
        n = len(self.parts)
        # (user bucket, item cell, kind of user, part)
        self.weights = np.full((len(USER_EDGES), 2, len(USER_KINDS), n), 1.0 / n, np.float32)
        self.item_counts = np.zeros(0, dtype=np.float32)
        self.validation: dict[str, Any] = {}
        self._tie_offsets = np.zeros(0, dtype=np.float32)
        self._reference = np.zeros(0, dtype=np.int64)
        self.fit_times = Stopwatch()
        """Seconds of the last fit's steps (each part on each split, the validation, the
        weights); not saved with the model."""

    @classmethod
    def _from_params(cls, params: Mapping[str, Any], **components: Any) -> Self:
        params = dict(params)
        specs = params.pop("parts")
        model_dir = components.get("model_dir")
        if model_dir is None:
            raise ValueError("loading a hybrid needs its directory (its parts are saved there)")
        parts = {}
        for name in specs:
            sub = {k: v for k, v in components.items() if k != "model_dir"}
            parts[name] = Recommender.load(Path(model_dir) / PARTS_DIR / name, **sub)
        return cls(parts, **params)

    def save(self, path: str | Path, *, profiles: bool = True) -> Path:
        path = super().save(path, profiles=profiles)
        for name, part in self.parts.items():
            part.save(path / PARTS_DIR / name, profiles=profiles)
        return path

    # ---- fitting ------------------------------------------------------------------------
    def _fit(self, dataset: Dataset) -> None:
        self._tie_offsets = np.zeros(0, dtype=np.float32)  # a new catalogue: hash it afresh
        self.weights[:] = 1.0 / len(self.parts)
        tune = self.tune and not dataset.positives().empty  # nothing to validate on without any
        steps = (2 * len(self.parts) + 1) if tune else len(self.parts)
        with tqdm(
            total=steps, desc="fitting the hybrid", unit="step", disable=not self.show_progress
        ) as bar:
            self.fit_times = watch = Stopwatch()
            if tune:
                with watch.time("inner validation"):
                    inner, tasks = inner_validation(
                        dataset,
                        seed=self.seed,
                        fraction=self.val_fraction,
                        next_item=self.next_item_queries,
                    )
                self._fit_parts(inner, bar, "inner split")
                bar.set_postfix_str("weights on the inner validation")
                with watch.time("context weights"):
                    chosen = self._fit_context_weights(tasks)
                with watch.time("attribute smoothing"):
                    chosen.update(
                        choose_smoothings(
                            self.parts, self._smoothing, tasks, self.attribute_smoothings, self.seed
                        )
                    )
                with watch.time("weights"):
                    self._fit_weights(tasks)
                self.validation.update(chosen)
                bar.update()
            self._fit_parts(dataset, bar, "full data")
        self._mute_silent()

    def same_blend(self, other: Recommender) -> TypeGuard[HybridRecommender]:
        """Whether ``other`` is a hybrid of the same parts (names and kinds, in order), whose
        weights therefore mean the same here."""
        return isinstance(other, HybridRecommender) and [
            (n, p.kind) for n, p in self.parts.items()
        ] == [(n, p.kind) for n, p in other.parts.items()]

    def fit_reusing(self, dataset: Dataset, previous: HybridRecommender) -> Self:
        """Fit every part once on ``dataset`` and blend them with ``previous``'s weights and
        context weights (no inner validation, no weight search): a refit on data that has not
        changed enough to move the weights (:func:`coldbrew.live.refit.reusable`). Each part
        starts from ``previous``'s part where it can (:meth:`Recommender.start_from`: ALS from
        its factors, the attribute map and the text-to-CF penalty kept).

        Raises
        ------
        ValueError
            When ``previous`` is not a hybrid of the same parts (:meth:`same_blend`).
        """
        if not self.same_blend(previous):
            raise ValueError(f"cannot reuse the weights of a different blend: {previous.kind}")
        for name, part in self.parts.items():
            if isinstance(part, CONTEXT_WEIGHTED):
                part.context_weight = getattr(previous.parts[name], "context_weight", 0.0)
            part.start_from(previous.parts[name])
        keep_smoothings(self.parts, previous.parts)
        tune, self.tune = self.tune, False
        try:
            self.fit(dataset)
        finally:
            self.tune = tune
        self.weights = previous.weights.copy()
        self.validation = dict(previous.validation)
        self._mute_silent()
        return self

    def _silent(self) -> np.ndarray:
        """Which parts learned nothing in their last fit (:attr:`Recommender.silent_reason`)."""
        return np.asarray([p.silent_reason is not None for p in self.parts.values()])

    def _mute_silent(self) -> None:
        """No weight on the parts that learned nothing (:func:`~.weights.mute_silent`)."""
        self.weights = mute_silent(self.weights, self._silent())

    def describe(self) -> str:
        """What the blend could learn: how many positive interactions it was fitted on, the
        parts that answer (weigh something for some user), the silent ones with their reasons,
        and those the validation gave no weight, e.g. ``hybrid fitted on 0 positive
        interactions: language model only (lm, lexical); silent: cf (no interactions)``."""
        weighs = np.any(self.weights.reshape(-1, len(self.parts)) > 0, axis=0)
        if (text := self._text_weights()) is not None:
            weighs |= text > 0
        return describe_blend(self.kind, self.parts, weighs, int(self.item_counts.sum()))

    def fit_parts_for_validation(self, dataset: Dataset) -> list[ValTask]:
        """The first half of :meth:`fit`, for benchmarks that compare weightings: take the
        catalogue and histories of ``dataset``, fit the parts on its inner training data and
        return the inner validation tasks (for :meth:`prepare`)."""
        self.item_ids = IdMap(dataset.items[ITEM_ID])
        self._active = np.ones(len(self.item_ids), dtype=bool)
        self._history, self._profiles = users_of(dataset)
        inner, tasks = inner_validation(
            dataset, seed=self.seed, fraction=self.val_fraction, next_item=self.next_item_queries
        )
        self._fit_parts(inner)
        return tasks

    def _fit_parts(self, dataset: Dataset, bar: Any = None, on: str = "") -> None:
        for name, part in self.parts.items():
            if bar is not None:
                bar.set_postfix_str(f"{name} on the {on}")
            with self.fit_times.time(f"{name} on the {on or 'data'}"):
                part.fit(dataset)
            if bar is not None:
                bar.update()
        counts = dataset.positives()[ITEM_ID].astype(str).value_counts()
        self.item_counts = counts.reindex(list(self.item_ids)).fillna(0).to_numpy(dtype=np.float32)

    def _part_scores(
        self, queries: Sequence[UserQuery], needed: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """Each part's standardised scores over every item; zeros for parts not ``needed``."""
        return part_scores(self.parts, queries, len(self.item_ids), needed)

    def _fit_context_weights(self, tasks: list[ValTask]) -> dict[str, Any]:
        """Choose the context weight of each part that reads the context (language-model and
        context-aware factor parts) among :attr:`context_weights` on the validation ``tasks``
        (parts left as they are when 0 is the only candidate)."""
        if len(self.context_weights) == 1:
            return {}
        return {
            f"context_weight/{name}": choose_context_weight(
                part, tasks, self.context_weights, self.seed
            )
            for name, part in self.parts.items()
            if isinstance(part, CONTEXT_WEIGHTED)
        }

    def _fit_weights(self, tasks: list[ValTask]) -> None:
        item_cell = (self.item_counts > 0).astype(int)
        self.fit_weights_prepared(
            {c: [self.prepare(t, item_cell) for t in tasks if t.cell == c] for c in (0, 1)}
        )

    def fit_weights_prepared(self, by_cell: Mapping[int, Sequence[Prepared]]) -> None:
        """Set :attr:`weights` (and :attr:`validation`) from validation tasks already scored
        by :meth:`prepare`, per item cell (benchmarks compare part sets on the same ones)."""
        self.validation = WeightSearch.of(self).fit(by_cell)

    def prepare(self, task: ValTask, item_cell: np.ndarray, top: int = 100) -> Prepared:
        """``task``'s queries scored by every part over their candidates: each query's union of
        every part's top ``top`` items (the only ones a blend can rank in its top 20 in
        practice), gathered so the grid search works on narrow matrices. ``item_cell`` is each
        item row's cell (1 where :attr:`item_counts` is positive, else 0)."""
        # the parts hold the (inner) training histories; the hybrid's own are the full ones
        first = next(iter(self.parts.values()))
        buckets = np.asarray([user_bucket(len(first.resolve(q).liked)) for q in task.queries])
        known = np.asarray([user_kind(first._history, first.resolve(q)) for q in task.queries])
        scores = self._part_scores(task.queries)
        quiet = self._silent()
        return gather(
            task, scores, self.item_ids, quiet, self._ties(), buckets, known, item_cell, top
        )

    # ---- scoring ------------------------------------------------------------------------
    def _score_rows(self, queries: Sequence[UserQuery]) -> np.ndarray:
        parts = list(self.contributions(queries).values())
        out: np.ndarray = np.sum(parts, axis=0) + self._ties()[None, :]
        return out

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        parts = list(self.contributions(queries, rows).values())
        out: np.ndarray = np.sum(parts, axis=0) + self._ties()[None, rows]
        return out

    def contributions(
        self, queries: Sequence[UserQuery], rows: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Each part's weighted, standardised scores, ``(queries, items)`` per part name: they
        sum to the blend (before the tie-break), so they say which part decided an item.
        ``queries`` must be resolved (as :meth:`score` passes them). With ``rows``, only those
        items are scored, each part standardised by its mean and spread over a fixed sample of
        the catalogue (:meth:`reference_rows`) instead of over every item."""
        weights = [self.query_weights(q) for q in queries]  # (cells, parts) each
        needed = np.any([w > 0 for w in weights], axis=(0, 1))
        if rows is None:
            parts = self._part_scores(queries, needed)
            cells = (self.item_counts > 0).astype(int)
        else:
            parts = part_scores_of(self.parts, queries, rows, self.reference_rows(), needed)
            cells = (self.item_counts[rows] > 0).astype(int)
        out = {}
        for j, (name, p) in enumerate(zip(self.parts, parts)):
            per_item = np.stack([w[cells, j] for w in weights])  # (queries, items)
            out[name] = (per_item * p).astype(np.float32, copy=False)
        return out

    def query_weights(self, query: UserQuery) -> np.ndarray:
        """The blend's weights for a resolved ``query``: ``(item cells, parts)``, by the user's
        bucket and kind (:func:`~.weights.user_kind`), or equal on the text-reading parts for a user
        who brings words and no history (:meth:`_text_weights`)."""
        reading = self._text_weights()
        if reading is not None and query.text and not query.liked:
            return np.tile(reading, (2, 1))
        weights: np.ndarray = self.weights[
            user_bucket(len(query.liked)), :, user_kind(self._history, query)
        ]
        return weights

    def blend_report(self, queries: Sequence[UserQuery], cell: int) -> list[dict[str, Any]]:
        """The weights ``queries`` are blended with on item ``cell`` (0: items without training
        interactions), one entry per group of users sharing them (bucket, returning or new),
        largest first, beside what the inner validation saw for that group (:attr:`validation`:
        the chosen weights' NDCG@20 and the best single part's), so a reader sees at once when
        the blend chose something odd."""
        resolved = [self.resolve(q) for q in queries]
        seen = [
            (user_kind(self._history, r), len(r.liked), self.query_weights(r)[cell])
            for r in resolved
        ]
        return blend_groups(seen, tuple(self.parts), self.validation, cell)

    def reference_rows(self, size: int = REFERENCE) -> np.ndarray:
        """A fixed random sample of item rows (seeded, so the same for every query) whose scores
        stand in for the whole catalogue's when only candidates are scored."""
        n = len(self.item_ids)
        if len(self._reference) != min(size, n) or (
            len(self._reference) and self._reference.max() >= n
        ):
            self._reference = reference_sample(n, size, self.seed)
        return self._reference

    def _text_weights(self) -> np.ndarray | None:
        """Equal weights on the parts that read text (:func:`~.weights.text_weights`)."""
        return text_weights(self.parts)

    def _ties(self) -> np.ndarray:
        """A tiny per-item offset from a hash of the id: items a blend scores exactly alike (new
        items under popularity or CF alone) are ordered by it, not by catalogue position, which
        on MovieLens follows popularity and would flatter such blends on validation."""

        # hashed once per catalogue size, not per query batch (ids only ever get appended)
        if len(self._tie_offsets) != len(self.item_ids):
            self._tie_offsets = (1e-6 * _id_hashes(self.item_ids.ids())).astype(np.float32)
        return self._tie_offsets

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        for part in self.parts.values():
            part.add_items(items)
        if len(self.item_ids) > len(self.item_counts):
            grown = np.zeros(len(self.item_ids), dtype=np.float32)
            grown[: len(self.item_counts)] = self.item_counts
            self.item_counts = grown
        self.item_counts[rows] = 0.0

    def text_vectors(self, rows: np.ndarray) -> np.ndarray | None:
        """The text vectors of the first part that holds any (the language model's)."""
        for part in self.parts.values():
            vectors = part.text_vectors(rows)
            if vectors is not None:
                return vectors
        return None

    def _reason(self, part: str, query: UserQuery, quotable: UserQuery, row: int) -> Reason:
        """The reason of the part that contributed most."""
        return self.parts[part]._reason(part, query, quotable, row)

    def named_parts(self) -> dict[str, Recommender]:
        return dict(self.parts)

    def item_fields(self) -> tuple[str, ...]:
        """The item fields its parts render, in order, each once."""
        fields = [f for part in self.parts.values() for f in part.item_fields()]
        return tuple(dict.fromkeys(fields))

    def encoders(self) -> list[Encoder]:
        """Its parts' encoders, in order, each once."""
        found = [e for part in self.parts.values() for e in part.encoders()]
        return [e for i, e in enumerate(found) if all(e is not f for f in found[:i])]

    def remove_items(self, item_ids: Any) -> None:
        ids = list(item_ids)
        super().remove_items(ids)
        for part in self.parts.values():
            part.remove_items(ids)

    def propose(self, query: UserQuery, n: int) -> np.ndarray:
        """What the parts that weigh anything for this user propose, and the newest items no one
        has interacted with yet (no collaborative part can propose those), ``n`` of each at
        most. A part with no weight in the user's blend cannot move their ranking, so it
        neither proposes nor (:meth:`contributions`) scores; the parts that weigh propose more
        instead (up to three times ``n`` each, about as many candidates in all), since the
        blend's top may lie below each one's own top ``n``."""
        resolved = self.resolve(query)
        needed = np.any(self.query_weights(resolved) > 0, axis=0)
        each = int(n * min(3.0, len(needed) / max(int(needed.sum()), 1)))
        proposals = [
            part.propose(resolved, each)
            for part, weighs in zip(self.parts.values(), needed)
            if weighs
        ]
        proposals.append(newest_cold(self.item_counts, self._active, n))
        return np.unique(np.concatenate(proposals)).astype(np.int64)

    def _forget_user(self, user_id: str) -> None:
        for part in self.parts.values():
            part.forget_user(user_id)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "item_counts": self.item_counts}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.weights = saved_weights(arrays["weights"])
        self.item_counts = arrays["item_counts"].astype(np.float32)
