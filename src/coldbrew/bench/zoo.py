"""The models a benchmark run compares, by name, with the hyperparameters it uses.

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

from collections.abc import Callable
from dataclasses import dataclass

from coldbrew.models.base import Recommender
from coldbrew.models.baselines import PopularityRecommender, RandomRecommender
from coldbrew.models.cf import ALSRecommender, BPRRecommender, ItemKNNRecommender
from coldbrew.models.lfm import LightFMRecommender
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


FACTORIES: dict[str, Callable[[ModelContext], Recommender]] = {
    "random": lambda ctx: RandomRecommender(seed=ctx.seed),
    "popularity": lambda ctx: PopularityRecommender(),
    "itemknn": lambda ctx: ItemKNNRecommender(neighbors=100),
    "als": lambda ctx: ALSRecommender(
        factors=64, regularization=0.05, iterations=15, seed=ctx.seed
    ),
    "bpr": lambda ctx: BPRRecommender(factors=64, iterations=100, seed=ctx.seed),
    "lightfm": lambda ctx: LightFMRecommender(
        no_components=64,
        epochs=20,
        max_words_per_item=40,
        fold_in_regularization=10.0,
        seed=ctx.seed,
    ),
    "tfidf": lambda ctx: TfidfRecommender(),
    "zeroshot": _zeroshot,
}
MODEL_NAMES = tuple(FACTORIES)


def make_model(name: str, ctx: ModelContext) -> Recommender:
    """A fresh, unfitted model by benchmark name."""
    if name not in FACTORIES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
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
            f"unknown models {unknown or spec!r}; choose from {', '.join(MODEL_NAMES)} or 'all'"
        )
    return names
