"""Saved model kind -> class. An explicit table: no import-by-string."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coldbrew.models.base import Recommender


def model_classes() -> dict[str, type[Recommender]]:
    from coldbrew.models.adapted import AdaptedZeroShotRecommender
    from coldbrew.models.baselines import (
        AttributePopularityRecommender,
        PopularityRecommender,
        RandomRecommender,
    )
    from coldbrew.models.cf import ALSRecommender, BPRRecommender, ItemKNNRecommender
    from coldbrew.models.contextcf import ContextALSRecommender
    from coldbrew.models.contextual import ContextPopularityRecommender
    from coldbrew.models.finetuned import FineTunedRecommender
    from coldbrew.models.heads import AttributeMapRecommender, CFMapRecommender
    from coldbrew.models.hybrid import HybridRecommender
    from coldbrew.models.lfm import LightFMRecommender
    from coldbrew.models.sequence import TransitionRecommender
    from coldbrew.models.tfidf import TfidfRecommender
    from coldbrew.models.zeroshot import ZeroShotRecommender

    classes: list[type[Recommender]] = [
        PopularityRecommender,
        AttributePopularityRecommender,
        ContextPopularityRecommender,
        RandomRecommender,
        ZeroShotRecommender,
        AdaptedZeroShotRecommender,
        ALSRecommender,
        ContextALSRecommender,
        BPRRecommender,
        ItemKNNRecommender,
        TransitionRecommender,
        TfidfRecommender,
        LightFMRecommender,
        AttributeMapRecommender,
        CFMapRecommender,
        FineTunedRecommender,
        HybridRecommender,
    ]
    return {cls.kind: cls for cls in classes}


def model_class(kind: str) -> type[Recommender]:
    classes = model_classes()
    if kind not in classes:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {sorted(classes)}")
    return classes[kind]
