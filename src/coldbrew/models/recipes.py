"""Every model coldbrew builds by name, with its hyperparameters: the served one (``hybrid``:
what ``coldbrew serve``, ``coldbrew recommend`` and every refit fit) and each model the
benchmark compares it with. Defined once here, where the models live; the bench, the service
and the command line ask for a recipe by name (:func:`make_model`).

Hyperparameters are moderate on purpose (the reference machine has two shared cores) and the
same on every dataset. ALS and BPR settings were picked by a short look at the validation part
of a separate ml-100k warm split (seed 7, never the benchmark's test part): fewer factors and
stronger regularisation for ALS, a lower learning rate and fewer epochs for BPR than their
library defaults. LightFM's fold-in regularisation (10) was the best of 1/10/100/1000 on the
validation users of a separate ml-100k cold-user split (seed 7); there, attributes alone scored
higher still (NDCG@20 0.359 vs 0.305 at k=1), i.e. folding liked items into LightFM without
retraining hurts it on MovieLens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from coldbrew.models.adapted import AdaptedZeroShotRecommender
from coldbrew.models.base import Recommender
from coldbrew.models.baselines import (
    AttributePopularityRecommender,
    PopularityRecommender,
    RandomRecommender,
)
from coldbrew.models.candidates import CandidateRecommender
from coldbrew.models.cf import ALSRecommender, BPRRecommender, ItemKNNRecommender
from coldbrew.models.contextcf import ContextALSRecommender
from coldbrew.models.contextual import ContextPopularityRecommender
from coldbrew.models.heads import AttributeMapRecommender, CFMapRecommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.lfm import LightFMRecommender
from coldbrew.models.privacy import PRIVATE_MIN_USERS
from coldbrew.models.sasrec import SASRecRecommender
from coldbrew.models.sequence import LinearTransitionRecommender, TransitionRecommender
from coldbrew.models.tfidf import TfidfRecommender
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.encoder import Encoder


@dataclass(frozen=True)
class ModelContext:
    """What a factory may use: the shared encoder (built once), the cache and the seed."""

    encoder: Callable[[], Encoder]
    cache_dir: str | None
    seed: int


def _zeroshot(ctx: ModelContext) -> Recommender:
    return ZeroShotRecommender(ctx.encoder(), cache_dir=ctx.cache_dir)


def _adapted(
    ctx: ModelContext, choices: tuple[str, ...] = ("raw", "whitened", "adapted")
) -> Recommender:
    """Zero-shot over whitened, interaction-adapted vectors (opt-in, issue 24 item 5): the fit
    keeps the raw, whitened or adapted vectors, whichever ranks held-out warm items best."""
    return AdaptedZeroShotRecommender(
        ctx.encoder(), choices=choices, cache_dir=ctx.cache_dir, seed=ctx.seed
    )


def _als(ctx: ModelContext) -> ALSRecommender:
    """The CF teacher/part inside ``cf_map`` and ``hybrid``: the settings they were measured with
    (benchmarks/notes/2026-11-23-learning-from-interactions.md); the bench's own ``als`` may
    differ."""
    return ALSRecommender(factors=64, regularization=0.05, iterations=15, seed=ctx.seed)


def _attribute_map(ctx: ModelContext, min_users: int = 1) -> AttributeMapRecommender:
    return AttributeMapRecommender(ctx.encoder(), cache_dir=ctx.cache_dir, min_users=min_users)


def _cf_map(
    ctx: ModelContext,
    teacher: ALSRecommender | None = None,
    lexical: TfidfRecommender | None = None,
) -> Recommender:
    """The text -> ALS map, reading the words too (128 SVD dimensions of TF-IDF beside the
    MiniLM vector: on the hybrid's inner validation of ml-100k's cold-item split, held-out
    items' NDCG@20 0.289 against 0.257 for MiniLM alone, benchmarks/fusion_validation.py), with
    its ridge penalty chosen at fit time on held-out warm items (the vectors it is given decide,
    a fine-tuned encoder's too). ``teacher`` and ``lexical``: parts of the same settings that
    a hybrid fits anyway, shared (fitted once, :func:`~coldbrew.models.cfmap.fit_once`)."""
    return CFMapRecommender(
        ctx.encoder(),
        teacher or _als(ctx),
        lexical=lexical,
        alpha=10.0,
        alpha_grid=(3.0, 10.0, 30.0),
        lexical_dims=128,
        cache_dir=ctx.cache_dir,
    )


def _hybrid_parts(ctx: ModelContext) -> dict[str, Recommender]:
    """The default hybrid's parts (see :func:`_hybrid`). ``cf_map``'s ALS teacher is the
    ``cf_f64`` part and its TF-IDF the ``lexical`` part (the same settings: fitted once)."""
    cf_f64, lexical = _als(ctx), TfidfRecommender()
    return {
        # both ALS settings the bench reports: 32 factors / strong regularisation is the better
        # one on ml-100k, 64 / weak on citeulike-a; the weight search picks per bucket
        "cf": FACTORIES["als"](ctx),
        "cf_f64": cf_f64,
        # the service saves this model: attribute values fewer than 5 users share are not
        # learned, so its files name no one's rare value (models/privacy.py, PRIVATE_MIN_USERS)
        "lm": _attribute_map(ctx, PRIVATE_MIN_USERS),
        "lexical": lexical,
        "cf_map": _cf_map(ctx, cf_f64, lexical),
        # item-item neighbours of what the user liked: on the hybrid's inner validation
        # (benchmarks/part_validation.py, warm split, cross-fitted) it lifted users with 3-20
        # revealed items and returning users on ml-100k (+15% warm) and citeulike-a (+15%
        # warm, +24% at 20 revealed) and left ml-1m and ml-latest-small within +-0.006
        "itemknn": FACTORIES["itemknn"](ctx),
        # what followed the user's latest likes in others' time-ordered histories (flat on data
        # without timestamps); its weight comes from the inner validation, where half of the
        # returning users hold out their latest likes (models/hybrid.py). Learned as one ridge
        # regression over the 20 latest likes, not counted: on the hybrid's inner validation
        # (cross-fitted, the four datasets with timestamps, next-item and warm splits) the
        # returning users' tasks gained on all eight (benchmarks/notes/
        # 2026-12-08-linear-transitions.md); the counts stay opt-in (hybrid_counted_transitions)
        "transitions": FACTORIES["linear_transitions"](ctx),
        # popularity among users who share the query's attributes (plain popularity without);
        # new items tie exactly (no hash tie-break: noise the weight search could fit).
        # Smoothing 1, not the baseline's 0.1: the service meets a new user with counts from
        # the past only, and on the time-ordered history halves of the ml-1m and ml-100k replay
        # streams (1,890 and 477 new users, before the evaluated window) 0.1 ranked their first
        # like below plain popularity (hit@20 0.232 vs 0.267, 0.252 vs 0.306), while 1 tied it
        # (0.262, 0.308) and ranked all their likes at least as well as 0.1 (NDCG@20 0.374 vs
        # 0.366, 0.397 vs 0.370); 1 is best on the mean of the two on both
        # (benchmarks/new_user_answers.py). The bench's random cold-user split, where the
        # counts include other users' future likes, had preferred 0.1.
        "attribute_popularity": AttributePopularityRecommender(
            smoothing=1.0, tie_break=False, min_users=PRIVATE_MIN_USERS
        ),
        # plain popularity: what a new user who revealed nothing gets unless the other parts
        # beat it out of fold on held-out users who revealed nothing (models/hybrid.py _prior).
        # With many user attributes the lifts above multiply into noise (a restaurants
        # catalogue with 19 attributes: 0.201 vs popularity's 0.227 at k=0, issue 24).
        "popularity": PopularityRecommender(tie_break=False),
    }


CONTEXT_WEIGHTS = (0.0, 0.25, 0.5, 1.0)
"""How much the language model may read the query's context in words (issue 26): the hybrid's
inner validation keeps 0 unless another weight beats it (models/contextweight.py)."""
ATTRIBUTE_SMOOTHINGS = (0.03, 0.1, 0.3, 1.0, 3.0)
"""The attribute-popularity part's candidate smoothings (the grid of
benchmarks/new_user_validation.py): the hybrid's inner validation keeps the part's 1 for new
users who revealed nothing unless another beats it out of fold (models/attrsmoothing.py); on
issue 24's validations that took 0.03 on online-retail (one attribute, a country, most users in
one) and 0.1 on ml-1m, and kept 1 on ml-100k."""


def _hybrid(
    ctx: ModelContext, parts: Mapping[str, Recommender] | None = None, **options: Any
) -> Recommender:
    """The default hybrid; ``parts``: other parts than the default's (opt-in variants: a part
    added or some dropped); ``options``: other values of its search's switches (opt-in)."""
    return HybridRecommender(
        _hybrid_parts(ctx) if parts is None else parts,
        seed=ctx.seed,
        context_weights=CONTEXT_WEIGHTS,
        attribute_smoothings=ATTRIBUTE_SMOOTHINGS,
        **options,
    )


def _hybrid_candidates(ctx: ModelContext) -> Recommender:
    """The default hybrid as the service ranks a catalogue of ``Serving.score_all_below``
    items or more: only its candidates scored, 200 a part (``Serving.candidates``), the
    language model's from an exact index over its item vectors (opt-in)."""
    return CandidateRecommender(_hybrid(ctx), n=200)


def _hybrid_blind(ctx: ModelContext) -> Recommender:
    """The default hybrid whose language model never reads the context (opt-in: the
    context-blind side of benchmarks/context.py)."""
    return HybridRecommender(
        _hybrid_parts(ctx), seed=ctx.seed, attribute_smoothings=ATTRIBUTE_SMOOTHINGS
    )


LM_PARTS = ("lm", "cf_map")
"""The default hybrid's parts that read the language model's vectors (``lexical`` is TF-IDF)."""


def _hybrid_no_lm(ctx: ModelContext) -> Recommender:
    """The default hybrid without its language-model parts: issue 24's ablation (opt-in)."""
    parts = {n: p for n, p in _hybrid_parts(ctx).items() if n not in LM_PARTS}
    return _hybrid(ctx, parts)


def _hybrid_without_next_item(ctx: ModelContext) -> Recommender:
    """The default hybrid whose inner validation asks no next-item queries, so returning users
    who reveal likes share the weights of those who do not (opt-in, issue 24 item 3: the
    default before they had their own; benchmarks/notes/2026-12-07-next-item-selection.md)."""
    return _hybrid(ctx, next_item_queries=False)


def _hybrid_next_latest(ctx: ModelContext) -> Recommender:
    """The default hybrid whose inner validation asks each time-ordered returning user for their
    latest like alone as a next-item query, not their :data:`~.innerval.NEXT_ITEM_STEPS` latest
    (opt-in: the default until b68220e, issue 24; about a third of the queries behind the
    weights of users who reveal likes)."""
    return _hybrid(ctx, next_item_queries=1)


def _hybrid_adapted(ctx: ModelContext) -> Recommender:
    """The default hybrid plus :func:`_adapted` as a part, ``lm_adapted`` (opt-in, issue 24
    item 5): the inner validation weighs it beside ``lm`` and the rest."""
    parts = {**_hybrid_parts(ctx), "lm_adapted": _adapted(ctx)}
    return _hybrid(ctx, parts)


def _hybrid_whitened(ctx: ModelContext) -> Recommender:
    """The default hybrid plus zero-shot over its catalogue's whitened MiniLM vectors as a part,
    ``lm_whitened`` (opt-in, issue 24 item 5): whitening alone, no map trained, so it costs one
    covariance of the item vectors; the inner validation weighs it beside the rest."""
    parts = {**_hybrid_parts(ctx), "lm_whitened": _adapted(ctx, ("whitened",))}
    return _hybrid(ctx, parts)


def _hybrid_sasrec(ctx: ModelContext) -> Recommender:
    """The default hybrid plus :class:`~.sasrec.SASRecRecommender` as a part, ``sasrec``
    (opt-in, issue 24: alone it is level with the hybrid on the shop's next item and above it
    on ml-1m's); the inner validation weighs it beside the rest, and on those splits never
    took it (benchmarks/notes/2026-12-07-sequential.md). It fits a network twice (the inner
    split, then all the data): minutes where the other parts take seconds."""
    return _hybrid(ctx, {**_hybrid_parts(ctx), "sasrec": SASRecRecommender(seed=ctx.seed)})


def _hybrid_counted_transitions(ctx: ModelContext) -> Recommender:
    """The default hybrid with its ``transitions`` part counted, as
    :class:`~.sequence.TransitionRecommender` does, instead of regressed (opt-in: the default
    until issue 24's benchmarks/notes/2026-12-08-linear-transitions.md)."""
    return _hybrid(ctx, {**_hybrid_parts(ctx), "transitions": FACTORIES["transitions"](ctx)})


def _hybrid_shapes(ctx: ModelContext) -> Recommender:
    """The default hybrid whose returning users' blends must lose to their reference on
    neither shape of validation query, random likes held out or the latest ones (opt-in,
    issue 24: on the pooled queries ``transitions`` won blends that lost the random-shaped
    ones; benchmarks/notes/2026-12-07-query-shapes.md)."""
    return _hybrid(ctx, every_shape=True)


def _hybrid_each_shape(ctx: ModelContext) -> Recommender:
    """The default hybrid whose returning users take the weights whose worse shape of
    validation query (random likes held out, or the latest) is best against that shape's own
    best part (opt-in, issue 24; :func:`~.selection.each_shape_at_its_best`): better than the
    pooled search on the inner validation of the four datasets with timestamps, worse on their
    test splits (ml-100k warm 0.2582 against 0.2797;
    benchmarks/notes/2026-12-07-both-warm-shapes.md)."""
    return _hybrid(ctx, each_shape=True)


def _hybrid_context(ctx: ModelContext) -> Recommender:
    """The default hybrid plus context-conditioned popularity (opt-in, issue 26): its inner
    validation asks each query in the context of the first event it must predict, so the part
    weighs only where what the events carried (place, hour band, weekday) predicted better.
    Context features fewer than 5 users share are not learned (as attribute values)."""
    part = ContextPopularityRecommender(tie_break=False, min_users=PRIVATE_MIN_USERS)
    parts = {**_hybrid_parts(ctx), "context_popularity": part}
    return _hybrid(ctx, parts)


def _context_als(ctx: ModelContext, weight: float = 1.0) -> ContextALSRecommender:
    """The bench's ``als`` fitted on users and context features together (issue 26): item
    factors learn from both, and a query's context features add their vectors to the user's.
    Alone it reads the context at weight 1; features fewer than 5 users share are not learned."""
    return ContextALSRecommender(
        factors=32,
        regularization=1.0,
        iterations=15,
        seed=ctx.seed,
        context_weight=weight,
        min_users=PRIVATE_MIN_USERS,
    )


def _hybrid_context_cf(ctx: ModelContext) -> Recommender:
    """The default hybrid plus :func:`_context_als` as a part (opt-in, issue 26): the inner
    validation chooses its context weight among :data:`CONTEXT_WEIGHTS` (0 unless another
    wins out of fold, models/contextweight.py), then its weight in each bucket's blend."""
    parts = {**_hybrid_parts(ctx), "context_cf": _context_als(ctx)}
    return _hybrid(ctx, parts)


FACTORIES: dict[str, Callable[[ModelContext], Recommender]] = {
    "random": lambda ctx: RandomRecommender(seed=ctx.seed),
    "popularity": lambda ctx: PopularityRecommender(),
    "attribute_popularity": lambda ctx: AttributePopularityRecommender(),
    "context_popularity": lambda ctx: ContextPopularityRecommender(),
    "itemknn": lambda ctx: ItemKNNRecommender(neighbors=100),
    "als": lambda ctx: ALSRecommender(factors=32, regularization=1.0, iterations=15, seed=ctx.seed),
    "bpr": lambda ctx: BPRRecommender(factors=64, learning_rate=0.01, iterations=50, seed=ctx.seed),
    # the libraries' usual settings too: the ml-100k-validated ones above do not transfer to
    # citeulike-a (ALS warm NDCG@20 0.114 vs 0.150 there), so both are reported
    "als_f64": lambda ctx: ALSRecommender(
        factors=64, regularization=0.05, iterations=15, seed=ctx.seed
    ),
    "bpr_lr05": lambda ctx: BPRRecommender(
        factors=64, learning_rate=0.05, iterations=100, seed=ctx.seed
    ),
    "lightfm": lambda ctx: LightFMRecommender(
        no_components=64,
        epochs=20,
        max_words_per_item=40,
        fold_in_regularization=10.0,
        seed=ctx.seed,
    ),
    "tfidf": lambda ctx: TfidfRecommender(),
    # the counts the hybrid's order part was until 2026-12-08, a baseline beside it
    "transitions": lambda ctx: TransitionRecommender(window=5),
    # self-attention over the order of a user's likes (issue 24, next item); opt-in: not a part
    # of the hybrid (benchmarks/notes/2026-12-07-sequential.md)
    "sasrec": lambda ctx: SASRecRecommender(seed=ctx.seed),
    # the hybrid's order part alone: what comes next as one ridge regression over the latest
    # likes (issue 24, next item; benchmarks/notes/2026-12-08-linear-transitions.md)
    "linear_transitions": lambda ctx: LinearTransitionRecommender(),
    "zeroshot": _zeroshot,
    "attribute_map": _attribute_map,
    "cf_map": _cf_map,
    "hybrid": _hybrid,
    "hybrid_context": _hybrid_context,
    "hybrid_blind": _hybrid_blind,
    "hybrid_candidates": _hybrid_candidates,
    "context_als": _context_als,
    "hybrid_context_cf": _hybrid_context_cf,
    "hybrid_no_lm": _hybrid_no_lm,
    "hybrid_without_next_item": _hybrid_without_next_item,
    "hybrid_next_latest": _hybrid_next_latest,
    "adapted_zeroshot": _adapted,
    "whitened_zeroshot": lambda ctx: _adapted(ctx, ("whitened",)),
    "hybrid_adapted": _hybrid_adapted,
    "hybrid_whitened": _hybrid_whitened,
    "hybrid_sasrec": _hybrid_sasrec,
    "hybrid_counted_transitions": _hybrid_counted_transitions,
    "hybrid_shapes": _hybrid_shapes,
    "hybrid_each_shape": _hybrid_each_shape,
}
OPT_IN = (
    "transitions",
    "sasrec",
    "linear_transitions",
    "context_popularity",
    "hybrid_context",
    "hybrid_blind",
    "hybrid_candidates",
    "context_als",
    "hybrid_context_cf",
    "hybrid_no_lm",
    "hybrid_without_next_item",
    "hybrid_next_latest",
    "adapted_zeroshot",
    "whitened_zeroshot",
    "hybrid_adapted",
    "hybrid_whitened",
    "hybrid_sasrec",
    "hybrid_counted_transitions",
    "hybrid_shapes",
    "hybrid_each_shape",
)
"""Models only a run that names them fits (the hybrid's transitions part, the context ones of
issue 26, issue 24's ablation, the default without its next-item validation, its adaptor, and
the hybrid scoring only its candidates)."""
MODEL_NAMES = tuple(n for n in FACTORIES if n not in OPT_IN)
"""What ``--models all`` runs."""


def make_model(name: str, ctx: ModelContext) -> Recommender:
    """A fresh, unfitted model by benchmark name."""
    if name not in FACTORIES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(FACTORIES)}")
    return FACTORIES[name](ctx)


def parse_models(spec: str) -> list[str]:
    """``"all"`` or a comma-separated list of names, validated, in the given order."""
    names = (
        list(MODEL_NAMES)
        if spec.strip() == "all"
        else [n.strip() for n in spec.split(",") if n.strip()]
    )
    unknown = [n for n in names if n not in FACTORIES]
    if unknown or not names:
        raise ValueError(
            f"unknown models {unknown or spec!r}; choose from {', '.join(FACTORIES)} or 'all'"
        )
    return names
