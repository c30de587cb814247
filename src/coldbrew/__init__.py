"""coldbrew: recommendations for users and items nobody has seen yet, from their text."""

from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models.base import Recommendations, Recommender, UserQuery

__all__ = ["Dataset", "DatasetSpec", "Recommendations", "Recommender", "UserQuery"]
__version__ = "0.1.0"
