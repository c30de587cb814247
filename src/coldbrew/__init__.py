"""coldbrew: recommendations for users and items nobody has seen yet, from their text."""

from coldbrew.data import load_dataset, sample_dataset
from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models.base import Recommendations, Recommender, UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.factory import make_encoder

__all__ = [
    "Dataset",
    "DatasetSpec",
    "Recommendations",
    "Recommender",
    "UserQuery",
    "ZeroShotRecommender",
    "load_dataset",
    "make_encoder",
    "sample_dataset",
]
__version__ = "0.1.0"
