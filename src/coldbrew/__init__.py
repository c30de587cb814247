"""coldbrew: recommendations for users and items nobody has seen yet, from their text.

The names below are imported on first use (:pep:`562`), so ``import coldbrew`` (and every
command line, which imports it first) does not wait for pandas, scikit-learn or the models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coldbrew.data import load_dataset, sample_dataset
    from coldbrew.data.schema import Dataset, DatasetSpec
    from coldbrew.models.base import Recommendations, Recommender, UserQuery
    from coldbrew.models.zeroshot import ZeroShotRecommender
    from coldbrew.text.factory import make_encoder, runtime_encoder

_HOMES = {
    "Dataset": "coldbrew.data.schema",
    "DatasetSpec": "coldbrew.data.schema",
    "Recommendations": "coldbrew.models.base",
    "Recommender": "coldbrew.models.base",
    "UserQuery": "coldbrew.models.base",
    "ZeroShotRecommender": "coldbrew.models.zeroshot",
    "load_dataset": "coldbrew.data",
    "make_encoder": "coldbrew.text.factory",
    "runtime_encoder": "coldbrew.text.factory",
    "sample_dataset": "coldbrew.data",
}
__all__ = [
    "Dataset",
    "DatasetSpec",
    "Recommendations",
    "Recommender",
    "UserQuery",
    "ZeroShotRecommender",
    "load_dataset",
    "make_encoder",
    "runtime_encoder",
    "sample_dataset",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'coldbrew' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # found here directly from now on
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
