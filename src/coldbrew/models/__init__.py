"""Recommenders: one protocol, many models."""

from coldbrew.models.base import ModelNotFittedError, Recommendations, Recommender, UserQuery
from coldbrew.models.baselines import PopularityRecommender, RandomRecommender
from coldbrew.models.registry import model_classes
from coldbrew.models.zeroshot import ZeroShotRecommender

__all__ = [
    "ModelNotFittedError",
    "PopularityRecommender",
    "RandomRecommender",
    "Recommendations",
    "Recommender",
    "UserQuery",
    "ZeroShotRecommender",
    "model_classes",
]
