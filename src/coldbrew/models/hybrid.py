"""The hybrid hand-over: collaborative, language-model and lexical scores blended by what is known.

Each part's scores are standardised per query (z-scores over the items), then summed with weights
that depend on the user's bucket (how many liked items: 0, 1-2, 3-4, 5-9, 10-19, 20-49, 50-99,
100+; the last two keep heavy warm users apart from users who have just revealed 20) and the
item's bucket (no training interaction, or some), and on whether the user was in the training
data (a returning user's known items and a new user's just-revealed ones favour different parts:
on ml-1m the new users' popularity-leaning weights cost the warm users 0.04 NDCG@20 when both
shared a bucket). The weights are fitted on an inner validation
carved out of the training data only (held-out items, held-out users revealing k items, held-out
interactions of warm users) by a grid search over blends of at most three parts. A blend
replaces the best single part (or, for one bucket, the weights of its whole cell; for a new user
who revealed nothing, plain popularity) only when it wins *out of fold* by more than its
standard error (:mod:`coldbrew.models.selection`): a search over hundreds of weightings
otherwise picks blends that led the validation by luck and lost to their own part on test.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeGuard

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from coldbrew.data.idmap import IdMap
from coldbrew.data.schema import (
    ITEM_ID,
    USER_ID,
    Dataset,
    context_at,
    has_timestamps,
    history_by_user,
    next_contexts,
)
from coldbrew.eval.protocols import hold_out, reveal_earliest, steps_from_latest
from coldbrew.models.base import Recommender, UserQuery, _profiles
from coldbrew.models.baselines import _id_hashes
from coldbrew.models.blend import Prepared, blend_ndcg
from coldbrew.models.contextweight import (
    CONTEXT_WEIGHTED,
    choose_context_weight,
    context_candidates,
)
from coldbrew.models.reasons import Reason
from coldbrew.models.selection import (
    ValTask,
    always,
    best_single,
    keep_unless_beaten,
)
from coldbrew.stopwatch import Stopwatch
from coldbrew.text.encoder import Encoder

USER_EDGES = (0, 1, 3, 5, 10, 20, 50, 100)
REVEALED = (0, 1, 3, 5, 10, 20)
"""How many items the inner validation's held-out users reveal (the cold-user protocol's k)."""
PARTS_DIR = "parts"
REFERENCE = 2000
"""How many sampled items stand in for the catalogue when only candidates are scored."""
POPULARITY = "popularity"
"""The part name a hybrid falls back on for a new user who revealed nothing."""
REPORTED = ("queries", "chosen", "best_part", "best_part_ndcg", "oof_gain", "oof_gain_se")
"""What :meth:`HybridRecommender.blend_report` repeats from a group's validation entry
(``queries`` there becomes ``val_queries``)."""
TEXT_KINDS = frozenset({"zeroshot", "attribute_map", "finetuned", "tfidf"})
"""Kinds of part that read a user's own words."""


def user_bucket(n_liked: int) -> int:
    """Index of the largest edge in :data:`USER_EDGES` not above ``n_liked``."""
    return int(np.searchsorted(USER_EDGES, n_liked, side="right") - 1)


def standardize(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores over the finite entries; non-finite entries go one below the row's
    lowest finite score (a row with none becomes all zeros)."""
    out = np.asarray(scores, dtype=np.float32)
    return standardize_by(out, out)


def standardize_by(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``scores`` as z-scores by the mean and spread of each row's finite ``reference`` scores
    (the row itself, or a sample of the catalogue); non-finite entries go one below every finite
    one (a row with none becomes all zeros; with no finite reference, finite entries are 0)."""
    out = np.array(scores, dtype=np.float32, copy=True)
    for r in range(len(out)):
        ref = reference[r][np.isfinite(reference[r])]
        finite = np.isfinite(out[r])
        if not finite.any():
            out[r] = 0.0
            continue
        if not len(ref):
            out[r] = np.where(finite, 0.0, -1.0)
            continue
        std = ref.std()
        out[r, finite] = (out[r, finite] - ref.mean()) / (std if std > 1e-12 else 1.0)
        low = min(out[r, finite].min(), (ref.min() - ref.mean()) / (std if std > 1e-12 else 1.0))
        out[r, ~finite] = low - 1.0
    return out


def simplex_grid(n_parts: int, step: float, max_parts: int | None = None) -> np.ndarray:
    """Every weight vector with entries in multiples of ``step`` summing to one (with at most
    ``max_parts`` non-zero entries), in lexicographic order."""
    units = round(1 / step)
    rows = []
    for size in range(1, min(n_parts, max_parts or n_parts, units) + 1):
        shares = [c for c in itertools.product(range(1, units + 1), repeat=size) if sum(c) == units]
        for chosen in itertools.combinations(range(n_parts), size):
            for share in shares:
                row = [0] * n_parts
                for j, w in zip(chosen, share, strict=True):
                    row[j] = w
                rows.append(row)
    return np.asarray(sorted(rows), dtype=np.float32) / units


def one_standard_error_choice(
    ndcg: np.ndarray, grid: np.ndarray, default: int | None = None
) -> int:
    """The simplest weights (fewest parts) statistically tied with the best on validation.

    ``ndcg`` is (grid points, queries). A point is tied when its paired mean loss against the
    best point is within one standard error; among tied points the one with the fewest non-zero
    weights wins, then the higher mean. This guards against blends that win the validation by
    noise (seen on ml-100k: a 0.2 TF-IDF share won the inner validation and lost on test).
    ``default`` (a grid row: the weights chosen on more data, e.g. the whole cell for one
    bucket) wins whenever it is tied: a small bucket has to beat it clearly to differ.
    """
    means = ndcg.mean(axis=1)
    best = int(np.argmax(means))
    diff = ndcg[best][None, :] - ndcg
    n = ndcg.shape[1]
    se = diff.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(grid))
    tied = diff.mean(axis=1) <= se
    if default is not None and tied[default]:
        return default
    sizes = (grid > 0).sum(axis=1)
    order = sorted(np.flatnonzero(tied), key=lambda g: (sizes[g], -means[g]))
    return int(order[0])


def canonical_grid(grid: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """``grid`` with the weight of ``flat`` parts (constant over the cell: they cannot reorder
    it) moved onto the others, duplicates dropped; all-flat points stay as they are. Blends that
    rank alike become one point, so the one-standard-error rule sees them as the same size."""
    canon = np.where(flat[None, :], 0.0, grid)
    total = canon.sum(axis=1, keepdims=True)
    canon = np.where(total > 0, canon / np.maximum(total, 1e-12), grid)
    return np.unique(np.round(canon, 6), axis=0).astype(np.float32)


def inner_validation(
    dataset: Dataset,
    *,
    seed: int,
    fraction: float = 0.1,
    max_queries: int = 300,
    next_item: bool = False,
) -> tuple[Dataset, list[ValTask]]:
    """Carve held-out items, held-out users (k-shot) and held-out warm interactions from
    ``dataset``'s positives; return the remaining training data and the validation tasks.

    Items and users are held out as the evaluation protocols do
    (:func:`~coldbrew.eval.protocols.hold_out`); held-out users reveal their earliest items as in
    the cold-user protocol (:func:`~coldbrew.eval.protocols.reveal_earliest`). Warm interactions
    are held out one by one with probability ``fraction`` (a user may lose all of theirs), unlike
    the warm protocol's exact per-user share. When the interactions have timestamps, half of the
    warm users lose as many as that draw gave them but their latest ones (:func:`latest_for_half`):
    a served model meets returning users' next likes, not random ones, and only that kind of
    query rewards a part that reads the order of likes. With ``next_item``, those users are asked
    again, in a task of their own, for their very latest like with everything before it
    revealed (:func:`next_item_query`), as the next-item protocol asks (and a served returning
    user, whose likes the service records at once); the training rows are the same, so the
    other tasks do not move.
    """
    rng = np.random.default_rng(seed)
    pos = dataset.positives().reset_index(drop=True)
    pos = pos.assign(**{USER_ID: pos[USER_ID].astype(str), ITEM_ID: pos[ITEM_ID].astype(str)})
    cold_users = hold_out(pos[USER_ID], fraction, rng)
    cold_items = hold_out(pos[ITEM_ID], fraction, rng)
    is_cu = pos[USER_ID].isin(cold_users).to_numpy()
    is_ci = pos[ITEM_ID].isin(cold_items).to_numpy()
    warm = pos[~is_cu & ~is_ci]
    held = rng.random(len(warm)) < fraction
    asked_again: set[str] = set()
    if has_timestamps(pos):
        # its own draws: the rest of the validation is the same queries with or without time
        held, moved = latest_for_half(warm, held, np.random.default_rng([seed, 1]))
        asked_again = set(warm[USER_ID][moved]) if next_item else set()
    train = warm[~held]
    train_hist = history_by_user(train)
    tasks: list[ValTask] = []

    def add(
        cell: int,
        qs: list[UserQuery],
        ex: list[set[str]],
        rel: list[set[str]],
        cand: list[str] | None,
    ) -> bool:
        if len(qs) > max_queries:
            keep = np.sort(rng.choice(len(qs), max_queries, replace=False))
            qs, ex, rel = [qs[i] for i in keep], [ex[i] for i in keep], [rel[i] for i in keep]
        if qs:
            tasks.append(ValTask(cell, qs, ex, rel, cand))
        return bool(qs)

    # held-out items: users with a training history look for them among the held-out items
    ci = pos[is_ci & ~is_cu].groupby(USER_ID)[ITEM_ID].apply(set).to_dict()
    ci = {u: r for u, r in ci.items() if u in train_hist}
    ci_ctx = next_contexts(pos[is_ci & ~is_cu])
    add(
        0,
        [UserQuery(user_id=u, context=context_at(ci_ctx, u, 0)) for u in ci],
        [set(train_hist[u]) for u in ci],
        list(ci.values()),
        sorted(cold_items),
    )
    # held-out users reveal their k earliest items
    cu_hist = history_by_user(pos[is_cu & ~is_ci])
    cu_ctx = next_contexts(pos[is_cu & ~is_ci])
    for k in REVEALED:
        shot = reveal_earliest(cu_hist, k)
        add(
            1,
            [
                UserQuery(user_id=u, liked=shown, context=context_at(cu_ctx, u, k))
                for u, shown in shot.revealed.items()
            ],
            [set(shown) for shown in shot.revealed.values()],
            list(shot.relevant.values()),
            None,
        )
    # warm users' held-out interactions
    wh = warm[held].groupby(USER_ID)[ITEM_ID].apply(set).to_dict()
    wh = {u: r for u, r in wh.items() if u in train_hist}
    wh_ctx = next_contexts(warm[held])
    asked = [UserQuery(user_id=u, context=context_at(wh_ctx, u, 0)) for u in wh]
    if add(1, asked, [set(train_hist[u]) for u in wh], list(wh.values()), None) and asked_again:
        # the time-ordered half of those users again, asked for their very latest like
        runs = history_by_user(warm[held])
        users = [str(q.user_id) for q in tasks[-1].queries if q.user_id in asked_again]
        nexts = [next_item_query(u, train_hist[u], runs[u], wh_ctx) for u in users]
        nexts = [n for n in nexts if not n[2] <= n[1]]  # a target already revealed is lost
        if nexts:
            qs, ex, rel = (list(column) for column in zip(*nexts, strict=True))
            tasks.append(ValTask(1, qs, ex, rel, None))
    return dataset.with_interactions(train), tasks


def next_item_query(
    user: str, history: list[str], run: list[str], contexts: Mapping[str, list[Any]]
) -> tuple[UserQuery, set[str], set[str]]:
    """A returning ``user``'s next-item validation query, what it excludes and what it must
    find: the latest of the held-out ``run`` (oldest first), with the training ``history`` and
    the rest of the run revealed, as the next-item protocol's test query reveals the validation
    item."""
    liked = (*history, *run[:-1])
    context = context_at(contexts, user, len(run) - 1)
    return UserQuery(user_id=user, liked=liked, context=context), set(liked), {run[-1]}


def latest_for_half(
    warm: pd.DataFrame, held: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``held`` (a mask over ``warm``'s rows) with a random half of the users' held-out rows
    moved to their latest ones, by timestamp then file order, as many as they had; and the mask
    of that half's rows."""
    codes, names = pd.factorize(warm[USER_ID], sort=True)
    latest_users = rng.random(len(names)) < 0.5
    n_held = np.bincount(codes, weights=held, minlength=len(names))
    latest = steps_from_latest(warm) < n_held[codes]
    moved = latest_users[codes]
    return np.where(moved, latest, held), moved


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
        Ask the inner validation's time-ordered returning users again for their very latest like
        with the rest revealed (:func:`inner_validation`'s ``next_item``). Off by default: on
        online-retail's next item it lifted the blend to its own transitions part, but the
        weights are shared with the warm protocol's returning users, and on ml-100k's warm
        split it cost them 0.04 NDCG@20 (benchmarks/README.md, issue 24 item 3).
    """

    kind = "hybrid"

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
        next_item_queries: bool = False,
    ) -> None:
        super().__init__()
        if not parts:
            raise ValueError("a hybrid needs at least one part")
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
        n = len(self.parts)
        # (user bucket, item cell, user known in training?, part)
        self.weights = np.full((len(USER_EDGES), 2, 2, n), 1.0 / n, dtype=np.float32)
        self.item_counts = np.zeros(0, dtype=np.float32)
        self.validation: dict[str, Any] = {}
        self._tie_offsets = np.zeros(0, dtype=np.float32)
        self._reference = np.zeros(0, dtype=np.int64)
        self.fit_times = Stopwatch()
        """Seconds of the last fit's steps (each part on each split, the validation, the
        weights); not saved with the model."""

    def get_params(self) -> dict[str, Any]:
        return {
            "parts": {n: {"kind": p.kind, "params": p.get_params()} for n, p in self.parts.items()},
            "grid_step": self.grid_step,
            "tune": self.tune,
            "val_fraction": self.val_fraction,
            "min_queries": self.min_queries,
            "max_parts": self.max_parts,
            "seed": self.seed,
            "context_weights": list(self.context_weights),
            "next_item_queries": self.next_item_queries,
        }

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
        """No weight on the parts that learned nothing from the data (without interactions ALS
        ranks by popularity's hash of the ids: noise); where that leaves no weight, equal weights
        on the parts that learned (unless none did)."""
        silent = self._silent()
        if silent.all() or not silent.any():
            return
        kept = np.where(silent, 0.0, self.weights)
        total = kept.sum(axis=-1, keepdims=True)
        equal = np.where(silent, 0.0, 1.0 / (~silent).sum())
        self.weights = np.where(total > 0, kept / np.maximum(total, 1e-12), equal).astype(
            np.float32
        )

    def describe(self) -> str:
        """What the blend could learn: how many positive interactions it was fitted on, the
        parts that answer (weigh something for some user), the silent ones with their reasons,
        and those the validation gave no weight, e.g. ``hybrid fitted on 0 positive
        interactions: language model only (lm, lexical); silent: cf (no interactions)``."""
        silent: dict[str, list[str]] = {}
        for name, part in self.parts.items():
            if part.silent_reason is not None:
                silent.setdefault(part.silent_reason, []).append(name)
        text = self._text_weights()
        weighs = np.any(self.weights.reshape(-1, len(self.parts)) > 0, axis=0)
        if text is not None:
            weighs |= text > 0
        learned = [(n, w) for (n, p), w in zip(self.parts.items(), weighs) if not p.silent_reason]
        answering = [n for n, w in learned if w]
        n = int(self.item_counts.sum())
        out = f"{self.kind} fitted on {n} positive interaction{'' if n == 1 else 's'}: "
        if not answering:
            out += "no part answers"
        elif all(self.parts[a].kind in TEXT_KINDS for a in answering):
            out += f"language model only ({', '.join(answering)})"
        else:
            out += f"answering with {', '.join(answering)}"
        if silent:
            quiet = "; ".join(f"{', '.join(names)} ({why})" for why, names in silent.items())
            out += f"; silent: {quiet}"
        unchosen = [name for name, w in learned if not w]
        if unchosen:
            out += f"; weighed 0 on validation: {', '.join(unchosen)}"
        return out

    def fit_parts_for_validation(self, dataset: Dataset) -> list[ValTask]:
        """The first half of :meth:`fit`, for benchmarks that compare weightings: take the
        catalogue and histories of ``dataset``, fit the parts on its inner training data and
        return the inner validation tasks (for :meth:`prepare`)."""
        self.item_ids = IdMap(dataset.items[ITEM_ID])
        self._active = np.ones(len(self.item_ids), dtype=bool)
        self._history = history_by_user(dataset.positives())
        self._profiles = _profiles(dataset)
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
        out = []
        for j, (name, part) in enumerate(self.parts.items()):
            if needed is not None and not needed[j]:
                out.append(np.zeros((len(queries), len(self.item_ids)), dtype=np.float32))
                continue
            scores = part.score(queries)
            if scores.shape[1] != len(self.item_ids):
                raise ValueError(
                    f"part {name!r} scores {scores.shape[1]} items, expected {len(self.item_ids)}"
                )
            out.append(standardize(scores))
        return out

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
        grid = self._grid([p for c in (0, 1) for p in by_cell.get(c, [])])
        report: dict[str, Any] = {}
        for cell in (0, 1):
            prepared = list(by_cell.get(cell, []))
            if not prepared:
                continue
            cell_grid = canonical_grid(grid, np.all([p.flat for p in prepared], axis=0))
            seen = set()
            for known in (1, 0):
                pooled, count, _ = self._search(prepared, cell_grid, cell, bucket=None, known=known)
                if not count:
                    continue
                seen.add(known)
                self.weights[:, cell, known] = pooled
                for b in range(len(USER_EDGES)):
                    default = self._prior(pooled, bucket=b, known=known)
                    best, n, table = self._search(
                        prepared, cell_grid, cell, bucket=b, known=known, default=default
                    )
                    self.weights[b, cell, known] = best if n >= self.min_queries else default
                    who = "known" if known else "new"
                    chosen = zip(self.parts, self.weights[b, cell, known])
                    table["weights"] = {p: round(float(w), 4) for p, w in chosen if w > 0}
                    report[f"cell{cell}/{who}/bucket{USER_EDGES[b]}"] = {"queries": n, **table}
            if len(seen) == 1:  # no validation queries for the other kind of user
                (only,) = seen
                self.weights[:, cell, 1 - only] = self.weights[:, cell, only]
                # ...but a new user who revealed nothing was never judged by these weights
                self.weights[0, cell, 0] = self._prior(self.weights[0, cell, 0], bucket=0, known=0)
        self.validation = report

    def _grid(self, prepared: Sequence[Prepared]) -> np.ndarray:
        """The simplex grid over the parts that had something to say in some validation task;
        the silent ones (every item alike, every query, every task: transitions on data with
        no timestamps) weigh 0, so the search is the one the other parts alone would get."""
        n = len(self.parts)
        silent = np.zeros(n, dtype=bool)
        if prepared:
            silent = np.all([p.silent for p in prepared], axis=0)
        if silent.all():
            silent[:] = False
        inner = simplex_grid(int((~silent).sum()), self.grid_step, self.max_parts)
        grid = np.zeros((len(inner), n), dtype=np.float32)
        grid[:, ~silent] = inner
        return grid

    def _prior(self, pooled: np.ndarray, *, bucket: int, known: int) -> np.ndarray:
        """The weights a bucket keeps unless its own validation beats them by more than a
        standard error: the whole cell's, except for new users who revealed nothing, who keep
        pure popularity (when it is a part): with nothing known, "most popular" is the answer
        to beat, and the cell's weights were tuned on users who revealed items."""
        if bucket or known or POPULARITY not in self.parts:
            return pooled
        prior = np.zeros(len(self.parts), dtype=np.float32)
        prior[list(self.parts).index(POPULARITY)] = 1.0
        return prior

    def prepare(self, task: ValTask, item_cell: np.ndarray, top: int = 100) -> Prepared:
        """``task``'s queries scored by every part over their candidates: each query's union of
        every part's top ``top`` items (the only ones a blend can rank in its top 20 in
        practice), gathered so the grid search works on narrow matrices. ``item_cell`` is each
        item row's cell (1 where :attr:`item_counts` is positive, else 0)."""
        parts = self._part_scores(task.queries)
        n = len(self.item_ids)
        banned = np.zeros((len(task.queries), n), dtype=bool)
        if task.candidates is not None:
            banned[:] = True
            banned[:, self.item_ids.rows(task.candidates, skip_unknown=True)] = False
        for q, ex in enumerate(task.exclude):
            banned[q, self.item_ids.rows(ex, skip_unknown=True)] = True
        top = min(top, n)
        # a part that scores every item alike for every query has nothing to say here, nor
        # one that learned nothing from the inner training data
        silent = np.asarray([not np.ptp(p, axis=1).any() for p in parts]) | self._silent()
        picks = []
        for p, quiet in zip(parts, silent, strict=True):
            if quiet and not silent.all():
                continue
            masked = np.where(banned, -np.inf, p)
            picks.append(np.argpartition(-masked, top - 1, axis=1)[:, :top])
        rows = [np.unique(np.concatenate([pk[q] for pk in picks])) for q in range(len(parts[0]))]
        width = max(len(r) for r in rows)
        index = np.zeros((len(rows), width), dtype=np.int64)
        pad = np.ones((len(rows), width), dtype=bool)
        for q, r in enumerate(rows):
            index[q, : len(r)], pad[q, : len(r)] = r, False
        pad |= np.take_along_axis(banned, index, axis=1)
        relevant = np.zeros((len(rows), width), dtype=bool)
        n_relevant = np.zeros(len(rows), dtype=np.int64)
        for q, rel in enumerate(task.relevant):
            rel_rows = self.item_ids.rows(rel, skip_unknown=True)
            rel_rows = rel_rows[~banned[q, rel_rows]]
            n_relevant[q] = len(rel_rows)
            relevant[q] = np.isin(index[q], rel_rows) & ~pad[q]
        # the parts hold the (inner) training histories; the hybrid's own are the full ones
        first = next(iter(self.parts.values()))
        buckets = np.asarray([user_bucket(len(first.resolve(q).liked)) for q in task.queries])
        known = np.asarray([_is_known(first, q) for q in task.queries], dtype=int)
        gathered = [np.take_along_axis(p, index, axis=1) for p in parts]
        # a part that scores every candidate of the task's cell alike, for every query, can
        # only add a constant there (popularity and CF on new items)
        mask = (item_cell[index] == task.cell) & ~pad
        flat = [
            bool(
                np.all(np.where(mask, g, -np.inf).max(1) - np.where(mask, g, np.inf).min(1) < 1e-6)
            )
            for g in gathered
        ]
        return Prepared(
            parts=tuple(gathered),
            ties=self._ties()[index],
            cells=item_cell[index],
            relevant=relevant,
            n_relevant=n_relevant,
            pad=pad,
            buckets=buckets,
            known=known,
            flat=np.asarray(flat),
            silent=silent,
        )

    def _search(
        self,
        prepared: Sequence[Prepared],
        grid: np.ndarray,
        cell: int,
        bucket: int | None,
        known: int,
        default: np.ndarray | None = None,
    ) -> tuple[np.ndarray, int, dict[str, Any]]:
        """Best grid weights for ``cell`` (other cell's weights fixed) on the chosen users:
        known in training or not (``known``), in ``bucket`` (``None``: every bucket).
        ``default`` is kept unless another grid point beats it by more than a standard error."""
        # the hybrid's weights with ``cell``'s (for the chosen users) set to each grid point
        tables = np.repeat(self.weights[None], len(grid), axis=0)
        tables[:, :, cell, known] = grid[:, None, :]
        per_query: list[np.ndarray] = []  # (grid, rows) NDCG@20 for every task
        for prep in prepared:
            rows = (prep.n_relevant > 0) & (prep.known == known)
            if bucket is not None:
                rows &= prep.buckets == bucket
            if rows.any():
                per_query.append(blend_ndcg(prep.take_queries(rows), tables))
        if not per_query:
            return self.weights[0, cell, known], 0, {}
        ndcg = np.concatenate(per_query, axis=1)
        count = ndcg.shape[1]
        fallback = None
        if default is not None:
            fallback = int(np.argmin(np.abs(grid - default).sum(axis=1)))
        reference = best_single(grid) if fallback is None else always(fallback)

        def candidate(scores: np.ndarray) -> int:
            return one_standard_error_choice(scores, grid, fallback)

        best, gain, se = keep_unless_beaten(ndcg, candidate, reference, self.seed)
        table = self._table(ndcg, grid, best)
        table["oof_gain"], table["oof_gain_se"] = gain, se
        return grid[best], count, table

    def _table(self, ndcg: np.ndarray, grid: np.ndarray, best: int) -> dict[str, Any]:
        """What a search saw: each part alone, the best single part, the best blend, the chosen
        point's mean."""
        means = ndcg.mean(axis=1)
        table: dict[str, Any] = {
            f"only_{n}": float(means[int(np.argmax(grid[:, j]))]) for j, n in enumerate(self.parts)
        }
        single = best_single(grid)(ndcg)
        table["best_part"] = "+".join(n for n, w in zip(self.parts, grid[single]) if w > 0)
        table["best_part_ndcg"] = float(means[single])
        table["best_blend"] = float(means.max())
        table["chosen"] = float(means[best])
        return table

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
            parts = self._part_scores_of(queries, rows, needed)
            cells = (self.item_counts[rows] > 0).astype(int)
        out = {}
        for j, (name, p) in enumerate(zip(self.parts, parts)):
            per_item = np.stack([w[cells, j] for w in weights])  # (queries, items)
            out[name] = (per_item * p).astype(np.float32, copy=False)
        return out

    def query_weights(self, query: UserQuery) -> np.ndarray:
        """The blend's weights for a resolved ``query``: ``(item cells, parts)``, by the user's
        bucket and whether they were trained on, or equal on the text-reading parts for a user
        who brings words and no history (:meth:`_text_weights`)."""
        reading = self._text_weights()
        if reading is not None and query.text and not query.liked:
            return np.tile(reading, (2, 1))
        weights: np.ndarray = self.weights[
            user_bucket(len(query.liked)), :, int(_is_known(self, query))
        ]
        return weights

    def blend_report(self, queries: Sequence[UserQuery], cell: int) -> list[dict[str, Any]]:
        """The weights ``queries`` are blended with on item ``cell`` (0: items without training
        interactions), one entry per group of users sharing them (bucket, returning or new),
        largest first, beside what the inner validation saw for that group (:attr:`validation`:
        the chosen weights' NDCG@20 and the best single part's), so a reader sees at once when
        the blend chose something odd."""
        groups: dict[tuple[str, int, tuple[tuple[str, float], ...]], int] = {}
        for query in queries:
            resolved = self.resolve(query)
            who = "known" if _is_known(self, resolved) else "new"
            weights = self.query_weights(resolved)[cell]
            shares = tuple((n, round(float(w), 4)) for n, w in zip(self.parts, weights) if w > 0)
            key = (who, USER_EDGES[user_bucket(len(resolved.liked))], shares)
            groups[key] = groups.get(key, 0) + 1
        out = []
        for (who, edge, shares), count in sorted(groups.items(), key=lambda kv: -kv[1]):
            seen = self.validation.get(f"cell{cell}/{who}/bucket{edge}", {})
            out.append(
                {"users": f"{who}, {edge}+ liked", "test_users": count, "weights": dict(shares)}
                | {("val_queries" if k == "queries" else k): seen[k] for k in REPORTED if k in seen}
            )
        return out

    def reference_rows(self, size: int = REFERENCE) -> np.ndarray:
        """A fixed random sample of item rows (seeded, so the same for every query) whose scores
        stand in for the whole catalogue's when only candidates are scored."""
        n = len(self.item_ids)
        if len(self._reference) != min(size, n) or (
            len(self._reference) and self._reference.max() >= n
        ):
            rng = np.random.default_rng(self.seed)
            self._reference = np.sort(rng.choice(n, min(size, n), replace=False))
        return self._reference

    def _part_scores_of(
        self, queries: Sequence[UserQuery], rows: np.ndarray, needed: np.ndarray
    ) -> list[np.ndarray]:
        reference = self.reference_rows()
        both = np.concatenate([rows, reference])
        out = []
        for j, part in enumerate(self.parts.values()):
            if not needed[j]:  # weighs nothing for these queries: not scored at all
                out.append(np.zeros((len(queries), len(rows)), dtype=np.float32))
                continue
            scores = part.score_rows(queries, both)
            out.append(standardize_by(scores[:, : len(rows)], scores[:, len(rows) :]))
        return out

    def _text_weights(self) -> np.ndarray | None:
        """Equal weights on the parts that read text, for a user who brings their own words and
        no history: no benchmark has such users, so no validation can tune their blend, and the
        words are what they said they want (``None`` when no part reads text)."""
        reads = np.asarray(
            [p.kind in TEXT_KINDS and p.silent_reason is None for p in self.parts.values()],
            dtype=np.float32,
        )
        return reads / reads.sum() if reads.any() else None

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
        cold = np.flatnonzero((self.item_counts == 0) & self._active[: len(self.item_counts)])
        proposals.append(cold[-n:])
        return np.unique(np.concatenate(proposals)).astype(np.int64)

    def _forget_user(self, user_id: str) -> None:
        for part in self.parts.values():
            part.forget_user(user_id)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "item_counts": self.item_counts}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        weights = arrays["weights"].astype(np.float32)
        if weights.ndim == 3:  # saved before weights depended on the user being known
            weights = np.repeat(weights[:, :, None, :], 2, axis=2)
        if len(weights) < len(USER_EDGES):  # saved with fewer buckets: the last one covers more
            extra = np.repeat(weights[-1:], len(USER_EDGES) - len(weights), axis=0)
            weights = np.concatenate([weights, extra])
        self.weights = weights
        self.item_counts = arrays["item_counts"].astype(np.float32)


def _is_known(model: Recommender, query: UserQuery) -> bool:
    """Whether ``query``'s user has a training history in ``model`` (a returning user)."""
    return query.user_id is not None and str(query.user_id) in model._history
