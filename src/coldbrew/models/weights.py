"""How a hybrid's weights are chosen: the simplex grid of blends, the z-scores parts are put on
before blending, and the search per item cell and user bucket (:class:`WeightSearch`) that keeps
the simplest blend tied with the best, and a blend over its reference only when it wins out of
fold (:mod:`coldbrew.models.selection`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from coldbrew.data.idmap import IdMap
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.blend import Prepared, blend_ndcg, both_shapes
from coldbrew.models.selection import (
    Chooser,
    ValTask,
    always,
    best_single,
    each_shape_at_its_best,
    holds_both_shapes,
    keep_unless_beaten,
    keep_unless_beaten_on_every_shape,
)

USER_EDGES = (0, 1, 3, 5, 10, 20, 50, 100)
"""The user buckets' lower edges, by how many items a user liked (or revealed)."""
POPULARITY = "popularity"
"""The part name a hybrid falls back on for a new user who revealed nothing."""
TEXT_KINDS = frozenset({"zeroshot", "attribute_map", "finetuned", "tfidf"})
"""Kinds of part that read a user's own words."""
USER_KINDS = ("new", "known", "revealing")
"""The weight table's kinds of user, by index: not in the training data; trained on and asking
from that history (the warm protocol's queries); trained on and revealing likes beyond it (the
next-item protocol's queries, and a served returning user who liked something since the
refit), whose next like follows their latest ones."""
NEW, KNOWN, REVEALING = range(len(USER_KINDS))


def user_bucket(n_liked: int) -> int:
    """Index of the largest edge in :data:`USER_EDGES` not above ``n_liked``."""
    return int(np.searchsorted(USER_EDGES, n_liked, side="right") - 1)


def user_kind(histories: Mapping[str, Sequence[str]], query: UserQuery) -> int:
    """The kind of user a resolved ``query`` asks for, an index into :data:`USER_KINDS`: new
    (no training history in ``histories``), known (asking from it) or revealing likes beyond it."""
    if query.user_id is None or str(query.user_id) not in histories:
        return NEW
    return REVEALING if set(query.liked) - set(histories[str(query.user_id)]) else KNOWN


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
        # each way to cut ``units`` into ``size`` positive shares: ``size - 1`` cuts among the
        # ``units - 1`` gaps (not every tuple of shares filtered by its sum: 10^9 of them at
        # step 0.1 over nine parts)
        shares = [
            tuple(b - a for a, b in zip((0, *cuts), (*cuts, units)))
            for cuts in itertools.combinations(range(1, units), size - 1)
        ]
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


@dataclass
class WeightSearch:
    """The search of a hybrid's weights (``weights``: buckets x item cells x
    :data:`USER_KINDS` x parts,
    set in place) over blends of its ``parts`` at ``grid_step``, at most ``max_parts`` at once;
    a bucket with fewer than ``min_queries`` validation queries keeps its cell's weights.
    ``out_of_fold=False`` takes each search's candidate without judging it against its
    reference out of fold (the rule before issue 24; benchmarks/lodo_defaults.py scores both).
    ``ndcg`` measures a grid of weight tables on a task (:func:`~.blend.blend_ndcg`; a benchmark
    that runs many searches on the same queries may pass one that remembers).
    ``every_shape``: a returning users' blend (:data:`KNOWN`) that wins out of fold replaces its
    reference only if it also loses to it by no more than a standard error, paired per query,
    on either shape of query, random likes held out or the latest ones
    (:attr:`~.blend.Prepared.latest`; :func:`~.selection.keep_unless_beaten_on_every_shape`);
    opt-in, issue 24. ``each_shape``: a returning users' search whose queries hold enough of
    both shapes (:func:`~.selection.holds_both_shapes`) takes the row whose worse shape is best
    against that shape's own best single part (:func:`~.selection.each_shape_at_its_best`), and
    a bucket with fewer of a shape keeps its cell's weights; opt-in, issue 24's never-below-a-part
    rule for both warm protocols."""

    parts: Sequence[str]
    weights: np.ndarray
    grid_step: float
    max_parts: int | None
    min_queries: int
    seed: int
    out_of_fold: bool = True
    ndcg: Callable[[Prepared, np.ndarray], np.ndarray] = blend_ndcg
    every_shape: bool = False
    each_shape: bool = False

    @classmethod
    def of(cls, hybrid: Any) -> WeightSearch:
        """The search of ``hybrid``'s weights (a :class:`~.hybrid.HybridRecommender`, set in
        place), with its parts, grid, limits, seed, :attr:`every_shape` and :attr:`each_shape`."""
        return cls(
            tuple(hybrid.parts),
            hybrid.weights,
            hybrid.grid_step,
            hybrid.max_parts,
            hybrid.min_queries,
            hybrid.seed,
            every_shape=hybrid.every_shape,
            each_shape=hybrid.each_shape,
        )

    def fit(
        self, by_cell: Mapping[int, Sequence[Prepared]], grid: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Set :attr:`weights` from validation tasks already scored by
        :meth:`~coldbrew.models.hybrid.HybridRecommender.prepare`, per item cell; return what
        each user group's search saw (the hybrid's ``validation``). ``grid``: the one
        :meth:`grid` gives every cell's tasks, when ``by_cell`` holds only some of them."""
        if grid is None:
            grid = self.grid([p for c in (0, 1) for p in by_cell.get(c, [])])
        report: dict[str, Any] = {}
        for cell in (0, 1):
            prepared = list(by_cell.get(cell, []))
            if not prepared:
                continue
            cell_grid = canonical_grid(grid, np.all([p.flat for p in prepared], axis=0))
            seen = set()
            for known in (KNOWN, REVEALING, NEW):
                pooled, count, whole = self.search(
                    prepared, cell_grid, cell, bucket=None, known=known
                )
                if not count:
                    continue
                seen.add(known)
                self.weights[:, cell, known] = pooled
                if (self.every_shape or self.each_shape) and known == KNOWN:  # judged by shape
                    report[f"cell{cell}/{USER_KINDS[known]}/all"] = {"queries": count, **whole}
                for b in range(len(USER_EDGES)):
                    default = self.prior(pooled, bucket=b, known=known)
                    best, n, table = self.search(
                        prepared, cell_grid, cell, bucket=b, known=known, default=default
                    )
                    self.weights[b, cell, known] = best if n >= self.min_queries else default
                    who = USER_KINDS[known]
                    chosen = zip(self.parts, self.weights[b, cell, known])
                    table["weights"] = {p: round(float(w), 4) for p, w in chosen if w > 0}
                    report[f"cell{cell}/{who}/bucket{USER_EDGES[b]}"] = {"queries": n, **table}
            self.fill_unseen(cell, seen)
        return report

    def fill_unseen(self, cell: int, seen: set[int]) -> None:
        """Weights for the kinds of user ``cell``'s validation had no queries of: returning
        users who reveal likes take those of returning users (data without timestamps, and
        items without interactions, have no such queries); new and returning users take each
        other's, except a new user who revealed nothing, who keeps the popularity prior."""
        one = seen & {NEW, KNOWN}
        if len(one) == 1:  # no validation queries for the other kind of user
            (only,) = one
            self.weights[:, cell, KNOWN - only] = self.weights[:, cell, only]
            if only:  # ...but a new user who revealed nothing was never judged by them
                pooled = self.weights[0, cell, NEW]
                self.weights[0, cell, NEW] = self.prior(pooled, bucket=0, known=NEW)
        if REVEALING not in seen:
            self.weights[:, cell, REVEALING] = self.weights[:, cell, KNOWN]

    def grid(self, prepared: Sequence[Prepared]) -> np.ndarray:
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

    def prior(self, pooled: np.ndarray, *, bucket: int, known: int) -> np.ndarray:
        """The weights a bucket keeps unless its own validation beats them by more than a
        standard error: the whole cell's, except for new users who revealed nothing, who keep
        pure popularity (when it is a part): with nothing known, "most popular" is the answer
        to beat, and the cell's weights were tuned on users who revealed items."""
        if not self.popularity_prior(bucket, known):
            return pooled
        prior = np.zeros(len(self.parts), dtype=np.float32)
        prior[list(self.parts).index(POPULARITY)] = 1.0
        return prior

    def popularity_prior(self, bucket: int | None, known: int) -> bool:
        """Whether the users searched keep plain popularity unless beaten: new users who
        revealed nothing, when popularity is a part."""
        return bucket == 0 and not known and POPULARITY in self.parts

    def search(
        self,
        prepared: Sequence[Prepared],
        grid: np.ndarray,
        cell: int,
        bucket: int | None,
        known: int,
        default: np.ndarray | None = None,
    ) -> tuple[np.ndarray, int, dict[str, Any]]:
        """Best grid weights for ``cell`` (other cell's weights fixed) on the chosen users: of
        kind ``known`` (an index into :data:`USER_KINDS`), in ``bucket`` (``None``: every one).
        ``default`` is kept unless another grid point beats it by more than a standard error."""
        # the hybrid's weights with ``cell``'s (for the chosen users) set to each grid point
        tables = np.repeat(self.weights[None], len(grid), axis=0)
        tables[:, :, cell, known] = grid[:, None, :]
        per_query: list[np.ndarray] = []  # (grid, rows) NDCG@20 for every task
        latest: list[np.ndarray] = []  # each query's shape
        for prep in prepared:
            rows = (prep.n_relevant > 0) & (prep.known == known)
            if bucket is not None:
                rows &= prep.buckets == bucket
            if rows.any():
                per_query.append(self.ndcg(prep.take_queries(rows), tables))
                latest.append(prep.latest[rows])
        if not per_query:
            return self.weights[0, cell, known], 0, {}
        ndcg, shape = np.concatenate(per_query, axis=1), np.concatenate(latest)
        count = ndcg.shape[1]
        fallback = None
        if default is not None:
            fallback = int(np.argmin(np.abs(grid - default).sum(axis=1)))
        reference = best_single(grid) if fallback is None else always(fallback)
        candidate = self.candidate(grid, fallback, self.popularity_prior(bucket, known))
        shapes: dict[str, float] = {}
        each = self.each_shape and known == KNOWN
        by_shape = (self.every_shape or each) and known == KNOWN  # judged, and reported, by shape
        if each and holds_both_shapes(shape):
            best, shapes = each_shape_at_its_best(ndcg, grid, shape, fallback)
            gain = se = float("nan")
        elif each and fallback is not None and both_shapes(prepared, known):
            best, gain, se = fallback, float("nan"), float("nan")  # the cell's, judged by shape
        elif self.out_of_fold and by_shape:
            best, gain, se, shapes = keep_unless_beaten_on_every_shape(
                ndcg, candidate, reference, self.seed, shape
            )
        elif self.out_of_fold:
            best, gain, se = keep_unless_beaten(ndcg, candidate, reference, self.seed)
        else:
            best, gain, se = candidate(ndcg), float("nan"), float("nan")
        table = self.table(ndcg, grid, best)
        table["oof_gain"], table["oof_gain_se"] = gain, se
        table.update({f"shape_{k}": v for k, v in shapes.items()})
        if by_shape:  # each shape: reference, candidate, choice
            rows = {"random": ~shape, "latest": shape}
            picks = {"reference": reference(ndcg), "candidate": candidate(ndcg), "chosen": best}
            table["by_shape"] = {
                name: {"queries": int(r.sum())}
                | {what: float(ndcg[row, r].mean()) for what, row in picks.items()}
                for name, r in rows.items()
                if r.any()
            }
        return grid[best], count, table

    def candidate(self, grid: np.ndarray, fallback: int | None, first_popularity: bool) -> Chooser:
        """What a search puts up against its reference: the simplest grid point tied with the
        best (``fallback`` kept when tied). Where plain popularity is the reference
        (``first_popularity``), it is judged once, out of fold, not also kept as the tie default
        (a half would rarely pick anything else, and a steady small lift would never pass); and
        the candidate is then the best single part unless a blend beats it out of fold, as
        everywhere else (there the best single part is the reference)."""
        if not first_popularity or not self.out_of_fold:
            return lambda scores: one_standard_error_choice(scores, grid, fallback)
        blend = partial(one_standard_error_choice, grid=grid)
        return lambda scores: keep_unless_beaten(scores, blend, best_single(grid), self.seed)[0]

    def table(self, ndcg: np.ndarray, grid: np.ndarray, best: int) -> dict[str, Any]:
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


def gather(
    task: ValTask,
    parts: Sequence[np.ndarray],
    item_ids: IdMap,
    learned_nothing: np.ndarray,
    ties: np.ndarray,
    buckets: np.ndarray,
    known: np.ndarray,
    item_cell: np.ndarray,
    top: int = 100,
) -> Prepared:
    """``task``'s queries as ``parts`` scored them (one ``(queries, items)`` array a part) over
    their candidates: each query's union of every part's top ``top`` items, gathered so the grid
    search works on narrow matrices. ``learned_nothing`` marks the parts that learned nothing,
    ``ties`` breaks ties per item, ``buckets`` and ``known`` are each query's user bucket and
    kind (:data:`USER_KINDS`), ``item_cell`` each item row's cell."""
    n = len(item_ids)
    banned = np.zeros((len(task.queries), n), dtype=bool)
    if task.candidates is not None:
        banned[:] = True
        banned[:, item_ids.rows(task.candidates, skip_unknown=True)] = False
    for q, ex in enumerate(task.exclude):
        banned[q, item_ids.rows(ex, skip_unknown=True)] = True
    top = min(top, n)
    # a part that scores every item alike for every query has nothing to say here, nor
    # one that learned nothing from the inner training data
    silent = np.asarray([not np.ptp(p, axis=1).any() for p in parts]) | learned_nothing
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
        rel_rows = item_ids.rows(rel, skip_unknown=True)
        rel_rows = rel_rows[~banned[q, rel_rows]]
        n_relevant[q] = len(rel_rows)
        relevant[q] = np.isin(index[q], rel_rows) & ~pad[q]
    gathered = [np.take_along_axis(p, index, axis=1) for p in parts]
    # a part that scores every candidate of the task's cell alike, for every query, can
    # only add a constant there (popularity and CF on new items)
    mask = (item_cell[index] == task.cell) & ~pad
    flat = [
        bool(np.all(np.where(mask, g, -np.inf).max(1) - np.where(mask, g, np.inf).min(1) < 1e-6))
        for g in gathered
    ]
    return Prepared(
        parts=tuple(gathered),
        ties=ties[index],
        cells=item_cell[index],
        relevant=relevant,
        n_relevant=n_relevant,
        pad=pad,
        buckets=buckets,
        known=known,
        flat=np.asarray(flat),
        silent=silent,
        latest=np.asarray(task.latest or [False] * len(task.queries), dtype=bool),
    )


def describe_blend(
    kind: str, parts: Mapping[str, Recommender], weighs: np.ndarray, item_count: int
) -> str:
    """What a blend of ``parts`` fitted on ``item_count`` positive interactions could learn
    (``weighs``: whether each part weighs something for some user): the parts that answer, the
    silent ones with their reasons, and those the validation gave no weight."""
    silent: dict[str, list[str]] = {}
    for name, part in parts.items():
        if part.silent_reason is not None:
            silent.setdefault(part.silent_reason, []).append(name)
    learned = [(n, w) for (n, p), w in zip(parts.items(), weighs) if not p.silent_reason]
    answering = [n for n, w in learned if w]
    n = item_count
    out = f"{kind} fitted on {n} positive interaction{'' if n == 1 else 's'}: "
    if not answering:
        out += "no part answers"
    elif all(parts[a].kind in TEXT_KINDS for a in answering):
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


def mute_silent(weights: np.ndarray, silent: np.ndarray) -> np.ndarray:
    """``weights`` (parts last) with no weight on the ``silent`` parts, which learned nothing
    from the data (without interactions ALS ranks by popularity's hash of the ids: noise);
    where that leaves no weight, equal weights on the parts that learned. ``weights`` as they
    are when every part or none is silent."""
    if silent.all() or not silent.any():
        return weights
    kept = np.where(silent, 0.0, weights)
    total = kept.sum(axis=-1, keepdims=True)
    equal = np.where(silent, 0.0, 1.0 / (~silent).sum())
    return np.where(total > 0, kept / np.maximum(total, 1e-12), equal).astype(np.float32)


def text_weights(parts: Mapping[str, Recommender]) -> np.ndarray | None:
    """Equal weights on the parts that read text, for a user who brings their own words and
    no history: no benchmark has such users, so no validation can tune their blend, and the
    words are what they said they want (``None`` when no part reads text)."""
    reads = np.asarray(
        [p.kind in TEXT_KINDS and p.silent_reason is None for p in parts.values()],
        dtype=np.float32,
    )
    return reads / reads.sum() if reads.any() else None


def saved_weights(weights: np.ndarray) -> np.ndarray:
    """Weights a hybrid saved, in today's shape ``(buckets, cells, kinds of user, parts)``:
    those saved before they depended on the user being known serve both, and returning users'
    serve those who reveal likes where saved before they had their own; with fewer buckets,
    the last one covers the rest."""
    weights = weights.astype(np.float32)
    if weights.ndim == 3:
        weights = np.repeat(weights[:, :, None, :], 2, axis=2)
    if weights.shape[2] < len(USER_KINDS):
        weights = np.concatenate([weights, weights[:, :, KNOWN : KNOWN + 1]], axis=2)
    if len(weights) < len(USER_EDGES):
        extra = np.repeat(weights[-1:], len(USER_EDGES) - len(weights), axis=0)
        weights = np.concatenate([weights, extra])
    return weights
